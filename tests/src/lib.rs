//! kubelift's testbed: an embedded API server, a kubelet emulator, end-to-end tests, the sandbox.
