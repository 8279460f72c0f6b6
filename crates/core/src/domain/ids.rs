//! Deterministic point ids: the idempotency key `(source_id, event_id)` maps
//! to one UUID, so a retried or re-sent event overwrites itself.

use uuid::Uuid;

/// Namespace for our v5 UUIDs (a random v4 fixed once; never change it, or
/// re-sent events would stop replacing their earlier copies).
const POINT_NAMESPACE: Uuid = Uuid::from_u128(0x6c1f_0f5e_3b1a_4d2e_9a57_2f0c_8e4b_7d31);

/// The store id of an event. The separator is a NUL byte, which validation
/// forbids inside ids, so `("a:b", "c")` and `("a", "b:c")` never collide.
pub fn point_id(source_id: &str, event_id: &str) -> Uuid {
    let mut key = Vec::with_capacity(source_id.len() + event_id.len() + 1);
    key.extend_from_slice(source_id.as_bytes());
    key.push(0);
    key.extend_from_slice(event_id.as_bytes());
    Uuid::new_v5(&POINT_NAMESPACE, &key)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_key_same_id_and_no_separator_collisions() {
        assert_eq!(point_id("acme", "e1"), point_id("acme", "e1"));
        assert_ne!(point_id("acme", "e1"), point_id("acme", "e2"));
        assert_ne!(point_id("acme", "e1"), point_id("other", "e1"));
        assert_ne!(point_id("a:b", "c"), point_id("a", "b:c"));
    }
}
