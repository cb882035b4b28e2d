//! The waiting room of the signing queue: one FIFO per client within each priority class,
//! served round robin, so a client with thousands of requests waiting gets one turn per
//! round like a client with one.
//!
//! Every request costs about the same (one signing root, at most one signature), so plain
//! round robin is already deficit round robin with equal quanta.
//!
//! The signing pool serves its waiting signatures the same way ([`crate::signer::pool`]).

use std::collections::{HashMap, VecDeque};

use super::priority::{ClientKey, Priority};

/// Queued items by class and client. Not synchronised: its owner holds it under a lock.
pub(crate) struct FairQueue<T> {
    classes: [ClassQueue<T>; 2],
    /// Items queued per client, over both classes (for the per-client cap).
    per_client: HashMap<ClientKey, usize>,
}

/// One class: a FIFO per client, and the clients with items in serving order.
struct ClassQueue<T> {
    by_client: HashMap<ClientKey, VecDeque<(u64, T)>>,
    /// Clients with at least one item; the front one is served next.
    rotation: VecDeque<ClientKey>,
    len: usize,
}

impl<T> Default for ClassQueue<T> {
    fn default() -> Self {
        Self {
            by_client: HashMap::new(),
            rotation: VecDeque::new(),
            len: 0,
        }
    }
}

impl<T> FairQueue<T> {
    /// An empty queue.
    pub(crate) fn new() -> Self {
        Self {
            classes: [ClassQueue::default(), ClassQueue::default()],
            per_client: HashMap::new(),
        }
    }

    /// Items waiting in `priority`.
    pub(crate) fn len_of(&self, priority: Priority) -> usize {
        self.classes[priority.index()].len
    }

    /// Items waiting in all classes.
    pub(super) fn len(&self) -> usize {
        self.classes.iter().map(|c| c.len).sum()
    }

    /// Items `client` has waiting, in all classes.
    pub(super) fn client_len(&self, client: &ClientKey) -> usize {
        self.per_client.get(client).copied().unwrap_or(0)
    }

    /// Items `client` has waiting in `priority`.
    pub(super) fn client_len_of(&self, priority: Priority, client: &ClientKey) -> usize {
        self.classes[priority.index()]
            .by_client
            .get(client)
            .map_or(0, VecDeque::len)
    }

    /// Queues `item` (identified by `id`) at the back of `client`'s FIFO in `priority`.
    pub(crate) fn push(&mut self, priority: Priority, client: ClientKey, id: u64, item: T) {
        let class = &mut self.classes[priority.index()];
        let fifo = class.by_client.entry(client.clone()).or_default();
        if fifo.is_empty() {
            class.rotation.push_back(client.clone());
        }
        fifo.push_back((id, item));
        class.len += 1;
        *self.per_client.entry(client).or_insert(0) += 1;
    }

    /// The next item of `priority`: the oldest of the client whose turn it is; that client
    /// then goes to the back of the rotation.
    pub(crate) fn pop(&mut self, priority: Priority) -> Option<T> {
        let class = &mut self.classes[priority.index()];
        let client = class.rotation.pop_front()?;
        let fifo = class.by_client.get_mut(&client)?;
        let (_, item) = fifo.pop_front()?;
        if fifo.is_empty() {
            class.by_client.remove(&client);
        } else {
            class.rotation.push_back(client.clone());
        }
        class.len -= 1;
        self.forget_one(&client);
        Some(item)
    }

    /// Removes the item `id` of `client` in `priority`, if it is still queued.
    pub(super) fn remove(&mut self, priority: Priority, client: &ClientKey, id: u64) -> Option<T> {
        let class = &mut self.classes[priority.index()];
        let fifo = class.by_client.get_mut(client)?;
        let at = fifo.iter().position(|(queued, _)| *queued == id)?;
        let (_, item) = fifo.remove(at)?;
        self.after_removal(priority, client);
        Some(item)
    }

    /// The client with the most items waiting in the lowest non-empty class, with that
    /// class and the count: whose request gives way when the queue is full.
    pub(super) fn heaviest(&self) -> Option<(Priority, &ClientKey, usize)> {
        Priority::ALL.into_iter().rev().find_map(|priority| {
            self.classes[priority.index()]
                .by_client
                .iter()
                .map(|(client, fifo)| (client, fifo.len()))
                .max_by_key(|(_, len)| *len)
                .map(|(client, len)| (priority, client, len))
        })
    }

    /// Removes the newest item of `client` in `priority` (the one that waited least).
    pub(super) fn pop_newest(&mut self, priority: Priority, client: &ClientKey) -> Option<T> {
        let fifo = self.classes[priority.index()].by_client.get_mut(client)?;
        let (_, item) = fifo.pop_back()?;
        self.after_removal(priority, client);
        Some(item)
    }

    /// Bookkeeping after an item of `client` left `priority` out of turn.
    fn after_removal(&mut self, priority: Priority, client: &ClientKey) {
        let class = &mut self.classes[priority.index()];
        class.len -= 1;
        if class.by_client.get(client).is_some_and(VecDeque::is_empty) {
            class.by_client.remove(client);
            class.rotation.retain(|c| c != client);
        }
        self.forget_one(client);
    }

    fn forget_one(&mut self, client: &ClientKey) {
        if let Some(count) = self.per_client.get_mut(client) {
            *count -= 1;
            if *count == 0 {
                self.per_client.remove(client);
            }
        }
    }
}

/// Which class is served next: duties first, but a waiting background item gets one turn
/// after every [`super::DUTY_TURNS`] duty turns, so it is never starved.
#[derive(Debug, Default)]
pub(crate) struct ClassTurns {
    /// Duty turns since the last background turn.
    duty_turns: usize,
}

impl ClassTurns {
    /// The class whose turn it is, given which classes have an item ready to serve.
    pub(crate) fn choose(&self, duty_ready: bool, background_ready: bool) -> Option<Priority> {
        match (duty_ready, background_ready) {
            (true, true) if self.duty_turns >= super::DUTY_TURNS => Some(Priority::Background),
            (true, _) => Some(Priority::Duty),
            (false, true) => Some(Priority::Background),
            (false, false) => None,
        }
    }

    /// Counts a turn taken by `priority`.
    pub(crate) fn taken(&mut self, priority: Priority) {
        self.duty_turns = match priority {
            Priority::Duty => self.duty_turns.saturating_add(1),
            Priority::Background => 0,
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn client(name: &str) -> ClientKey {
        ClientKey::Identified(name.into())
    }

    #[test]
    fn clients_take_turns_within_a_class() {
        let mut q = FairQueue::new();
        for i in 0..5 {
            q.push(Priority::Duty, client("flood"), i, format!("flood{i}"));
        }
        q.push(Priority::Duty, client("victim"), 10, "victim0".to_string());
        q.push(Priority::Duty, client("victim"), 11, "victim1".to_string());
        let order: Vec<_> = std::iter::from_fn(|| q.pop(Priority::Duty)).collect();
        assert_eq!(
            order,
            ["flood0", "victim0", "flood1", "victim1", "flood2", "flood3", "flood4"]
        );
        assert_eq!(q.len(), 0);
        assert_eq!(q.client_len(&client("flood")), 0);
    }

    #[test]
    fn classes_are_separate_and_counted() {
        let mut q = FairQueue::new();
        q.push(Priority::Background, client("a"), 1, 1);
        q.push(Priority::Duty, client("a"), 2, 2);
        assert_eq!(q.len_of(Priority::Duty), 1);
        assert_eq!(q.len_of(Priority::Background), 1);
        assert_eq!(q.client_len(&client("a")), 2);
        assert_eq!(q.client_len_of(Priority::Duty, &client("a")), 1);
        assert_eq!(q.pop(Priority::Background), Some(1));
        assert_eq!(q.pop(Priority::Background), None);
        assert_eq!(q.pop(Priority::Duty), Some(2));
    }

    #[test]
    fn removal_out_of_turn_keeps_the_rotation_consistent() {
        let mut q = FairQueue::new();
        q.push(Priority::Duty, client("a"), 1, "a1");
        q.push(Priority::Duty, client("b"), 2, "b2");
        q.push(Priority::Duty, client("b"), 3, "b3");
        assert_eq!(q.remove(Priority::Duty, &client("a"), 1), Some("a1"));
        assert_eq!(
            q.remove(Priority::Duty, &client("a"), 1),
            None,
            "gone already"
        );
        assert_eq!(q.pop_newest(Priority::Duty, &client("b")), Some("b3"));
        assert_eq!(q.len(), 1);
        assert_eq!(q.pop(Priority::Duty), Some("b2"));
        assert_eq!(q.pop(Priority::Duty), None);
        assert!(q.classes[0].rotation.is_empty());
        assert!(q.per_client.is_empty());
    }

    #[test]
    fn the_heaviest_client_of_the_lowest_class_gives_way() {
        let mut q = FairQueue::new();
        for i in 0..3 {
            q.push(Priority::Duty, client("duty"), i, ());
        }
        assert_eq!(q.heaviest(), Some((Priority::Duty, &client("duty"), 3)));
        q.push(Priority::Background, client("small"), 10, ());
        q.push(Priority::Background, client("big"), 11, ());
        q.push(Priority::Background, client("big"), 12, ());
        assert_eq!(
            q.heaviest(),
            Some((Priority::Background, &client("big"), 2))
        );
    }
}
