//! kubelift's testbed: an embedded API server, a kubelet emulator, end-to-end tests, the sandbox.
pub mod apiserver;
pub mod artifact_server;
pub mod bench;
pub mod cluster;
pub mod containerd;
pub mod cri_sim;
pub mod emulator;
pub mod helper_run;
pub mod sandbox;
pub mod scripted_helper;
pub mod standin_kubelet;
pub mod supervisor;
