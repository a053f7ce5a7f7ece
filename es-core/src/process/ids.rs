//! Deterministic ids for the commands a process sends and the events they produce.

use uuid::Uuid;

/// The namespace of process command ids (UUIDv5).
const COMMANDS: Uuid = Uuid::from_u128(0x6a1f_3c2e_9b4d_4e8a_a0f1_2c3d_4e5f_6071);

/// The id of step `step` of the reaction of `process`'s `instance` to the input `cause` (an event id, or a timer's
/// key): the same inputs give the same id, so a redelivered input re-sends the same command.
///
/// ```
/// use es_core::process::command_id;
///
/// let a = command_id("order-process", "o-1", "event:1234", 0);
/// assert_eq!(a, command_id("order-process", "o-1", "event:1234", 0));
/// assert_ne!(a, command_id("order-process", "o-1", "event:1234", 1));
/// ```
pub fn command_id(process: &str, instance: &str, cause: &str, step: u32) -> Uuid {
    let name = format!("{}\u{1f}{}\u{1f}{}\u{1f}{step}", process, instance, cause);
    Uuid::new_v5(&COMMANDS, name.as_bytes())
}
