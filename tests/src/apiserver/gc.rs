//! The garbage collector: once an owner is gone, dependents whose every owner is gone are
//! deleted in the background (pods gracefully), others just lose the dangling reference.

use super::objects::{DeleteOptions, State, remove_owner_reference};

/// Visits the dependents of every owner removed since the last run, transitively.
pub fn collect(state: &mut State) {
    while let Some(uid) = state.pending_cascade.pop() {
        for (info, key, mut dependent) in state.dependents_of(&uid) {
            let refs = dependent["metadata"]["ownerReferences"]
                .as_array()
                .cloned()
                .unwrap_or_default();
            let other_owner_alive = refs
                .iter()
                .filter_map(|r| r["uid"].as_str())
                .any(|owner| owner != uid && state.uid_exists(owner));
            if other_owner_alive {
                remove_owner_reference(&mut dependent, &uid);
                state.store.put(&info.store, key, dependent);
                continue;
            }
            let background = DeleteOptions {
                propagation: Some("Background".into()),
                ..Default::default()
            };
            if let Err(error) = state.delete(&info, &key, &background) {
                tracing::debug!(name = %key.1, %error, "garbage collector skipped a dependent");
            }
        }
    }
}
