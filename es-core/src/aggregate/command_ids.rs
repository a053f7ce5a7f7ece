//! The ids of the events a command produces, derived from the command's id: a command run again produces the same
//! ids, which is how the repository recognises a command it already ran.

use uuid::Uuid;

use crate::store::EventId;

/// The id of the `index`th event produced by command `command`.
///
/// ```
/// use es_core::aggregate::event_id_for;
/// use uuid::Uuid;
///
/// let command = Uuid::nil();
/// assert_eq!(event_id_for(command, 0), event_id_for(command, 0));
/// assert_ne!(event_id_for(command, 0), event_id_for(command, 1));
/// ```
pub fn event_id_for(command: Uuid, index: usize) -> EventId {
    EventId::from_uuid(Uuid::new_v5(&command, &(index as u64).to_be_bytes()))
}
