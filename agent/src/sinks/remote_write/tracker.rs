//! Which WAL records are fully delivered, so a queue's cursor only moves past data that is.
//!
//! Samples of one record spread over several shards that finish in any order; the cursor may
//! advance to the end of a record only when every record before it, and it, are done
//! (delivered, or rejected for good). Unfinished records are re-read after a restart.

use std::collections::VecDeque;
use std::sync::Mutex;

use super::wal::Position;

struct Entry {
    /// Samples handed out minus samples finished; may dip below zero before `seal`.
    remaining: i64,
    sealed: bool,
    end: Position,
}

struct State {
    first_seq: u64,
    pending: VecDeque<Entry>,
    committed: Position,
}

pub struct Tracker {
    st: Mutex<State>,
}

impl Tracker {
    pub fn new(start: Position) -> Self {
        Self {
            st: Mutex::new(State {
                first_seq: 0,
                pending: VecDeque::new(),
                committed: start,
            }),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.st
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Opens a record ending at `end`; its samples are then handed to shards under the
    /// returned sequence number, and [`seal`](Self::seal) says how many there were.
    pub fn begin(&self, end: Position) -> u64 {
        let mut st = self.lock();
        st.pending.push_back(Entry {
            remaining: 0,
            sealed: false,
            end,
        });
        st.first_seq + st.pending.len() as u64 - 1
    }

    pub fn seal(&self, seq: u64, count: usize) {
        let mut st = self.lock();
        let i = (seq - st.first_seq) as usize;
        if let Some(e) = st.pending.get_mut(i) {
            e.remaining += count as i64;
            e.sealed = true;
        }
        Self::advance(&mut st);
    }

    /// `n` samples of record `seq` are finished.
    pub fn done(&self, seq: u64, n: usize) {
        let mut st = self.lock();
        if let Some(i) = seq.checked_sub(st.first_seq)
            && let Some(e) = st.pending.get_mut(i as usize)
        {
            e.remaining -= n as i64;
        }
        Self::advance(&mut st);
    }

    fn advance(st: &mut State) {
        while let Some(e) = st.pending.front() {
            if !(e.sealed && e.remaining == 0) {
                break;
            }
            st.committed = e.end;
            st.pending.pop_front();
            st.first_seq += 1;
        }
    }

    /// The end of the longest finished prefix of records.
    pub fn committed(&self) -> Position {
        self.lock().committed
    }

    /// Marks every sample in `seqs` (non-decreasing) finished.
    pub fn done_all(&self, seqs: &[u64]) {
        let mut i = 0;
        while i < seqs.len() {
            let mut j = i;
            while j < seqs.len() && seqs[j] == seqs[i] {
                j += 1;
            }
            self.done(seqs[i], j - i);
            i = j;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(o: u64) -> Position {
        Position {
            segment: 0,
            offset: o,
        }
    }

    #[test]
    fn the_cursor_moves_only_past_a_finished_prefix() {
        let t = Tracker::new(p(0));
        let a = t.begin(p(10));
        t.done(a, 1); // a shard finished before the record was sealed
        t.seal(a, 2);
        let b = t.begin(p(20));
        t.seal(b, 1);
        t.done(b, 1);
        assert_eq!(t.committed(), p(0), "b is done but a is not");
        t.done(a, 1);
        assert_eq!(t.committed(), p(20));
        let c = t.begin(p(30));
        t.seal(c, 0);
        assert_eq!(
            t.committed(),
            p(30),
            "a record with nothing to send is done at once"
        );
    }
}
