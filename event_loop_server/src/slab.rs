//! Where the loop keeps its connections: a slab (a vector of slots plus a
//! list of free ones), so a connection is found from its `mio::Token` (which
//! names its slot, tokens.rs) with one index, not a hash lookup. The
//! acceptor keeps its refused connections in a slab too (refuse.rs).
//!
//! Slots are reused, and that is a trap: a timer set for the connection that
//! *used* to live in slot 7 must not fire into the one living there now. So
//! each slot counts its occupants, and a [`ConnectionId`] is the pair (slot,
//! generation). Looking up a stale id finds nothing.

/// One connection in one slab, for as long as it lives there.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ConnectionId {
    pub(crate) slot: usize,
    pub(crate) generation: u64,
}

struct Slot<T> {
    generation: u64,
    value: Option<T>,
}

pub(crate) struct Slab<T> {
    slots: Vec<Slot<T>>,
    free: Vec<usize>,
    len: usize,
}

impl<T> Slab<T> {
    pub(crate) fn new() -> Self {
        Slab {
            slots: Vec::new(),
            free: Vec::new(),
            len: 0,
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// Stores the value made by `make`, which is told the id it will have.
    pub(crate) fn insert_with(&mut self, make: impl FnOnce(ConnectionId) -> T) -> ConnectionId {
        let slot = self.free.pop().unwrap_or_else(|| {
            self.slots.push(Slot {
                generation: 0,
                value: None,
            });
            self.slots.len() - 1
        });
        let entry = &mut self.slots[slot];
        entry.generation += 1;
        let id = ConnectionId {
            slot,
            generation: entry.generation,
        };
        entry.value = Some(make(id));
        self.len += 1;
        id
    }

    pub(crate) fn get(&self, id: ConnectionId) -> Option<&T> {
        let entry = self.slots.get(id.slot)?;
        if entry.generation != id.generation {
            return None;
        }
        entry.value.as_ref()
    }

    pub(crate) fn get_mut(&mut self, id: ConnectionId) -> Option<&mut T> {
        let entry = self.slots.get_mut(id.slot)?;
        if entry.generation != id.generation {
            return None;
        }
        entry.value.as_mut()
    }

    /// Whether `id` still names a live connection.
    pub(crate) fn contains(&self, id: ConnectionId) -> bool {
        self.get(id).is_some()
    }

    /// The id of whatever lives in `slot` now, if anything does.
    pub(crate) fn id_at(&self, slot: usize) -> Option<ConnectionId> {
        let entry = self.slots.get(slot)?;
        entry.value.as_ref()?;
        Some(ConnectionId {
            slot,
            generation: entry.generation,
        })
    }

    pub(crate) fn remove(&mut self, id: ConnectionId) -> Option<T> {
        let entry = self.slots.get_mut(id.slot)?;
        if entry.generation != id.generation {
            return None;
        }
        let value = entry.value.take()?;
        self.free.push(id.slot);
        self.len -= 1;
        Some(value)
    }

    pub(crate) fn ids(&self) -> Vec<ConnectionId> {
        self.slots
            .iter()
            .enumerate()
            .filter(|(_, entry)| entry.value.is_some())
            .map(|(slot, entry)| ConnectionId {
                slot,
                generation: entry.generation,
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_reused_slot_does_not_answer_to_its_old_id() {
        let mut slab = Slab::new();
        let old = slab.insert_with(|_| "old");
        slab.remove(old);
        let new = slab.insert_with(|_| "new");
        assert_eq!(new.slot, old.slot);
        assert_eq!(slab.get_mut(old), None);
        assert_eq!(slab.get_mut(new), Some(&mut "new"));
        assert_eq!(slab.id_at(new.slot), Some(new));
    }
}
