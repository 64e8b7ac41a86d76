//! All traffic at a glance (the report's overview): requests and posts per hour and
//! requests per status class, over every request read, whatever the client.

use crate::engine::time::Micros;

const HOUR: Micros = 3_600_000_000;

/// Status classes counted: `1xx` to `5xx`, then anything else.
pub const STATUS_CLASSES: [&str; 6] = ["1xx", "2xx", "3xx", "4xx", "5xx", "other"];

/// Requests and posts per hour, and requests per status class.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Traffic {
    /// `(hour start, requests, posts)`, sorted by hour.
    pub hours: Vec<(Micros, u64, u64)>,
    /// Requests per entry of [`STATUS_CLASSES`].
    pub status: [u64; 6],
}

impl Traffic {
    /// Counts one request at `t`, of `posts` posts, answered with `status`.
    #[inline]
    pub fn add(&mut self, t: Micros, posts: u64, status: u16) {
        let class = match status / 100 {
            c @ 1..=5 => c as usize - 1,
            _ => 5,
        };
        self.status[class] += 1;
        self.add_hour(t.div_euclid(HOUR) * HOUR, 1, posts);
    }

    fn add_hour(&mut self, hour: Micros, requests: u64, posts: u64) {
        // Lines of a file are nearly in time order: the last hour is the common case.
        if let Some(last) = self.hours.last_mut().filter(|h| h.0 == hour) {
            last.1 += requests;
            last.2 += posts;
            return;
        }
        match self.hours.binary_search_by_key(&hour, |h| h.0) {
            Ok(i) => {
                self.hours[i].1 += requests;
                self.hours[i].2 += posts;
            }
            Err(i) => self.hours.insert(i, (hour, requests, posts)),
        }
    }

    /// Adds `other`'s counts to these.
    pub fn merge(&mut self, other: &Traffic) {
        for (a, b) in self.status.iter_mut().zip(other.status) {
            *a += b;
        }
        for &(h, r, p) in &other.hours {
            self.add_hour(h, r, p);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hours_and_classes_add_up() {
        let mut a = Traffic::default();
        a.add(HOUR + 5, 1, 200);
        a.add(5, 0, 404);
        a.add(HOUR + 9, 1, 304);
        a.add(-1, 0, 0);
        let mut b = Traffic::default();
        b.add(2 * HOUR, 1, 503);
        a.merge(&b);
        assert_eq!(
            a.hours,
            vec![(-HOUR, 1, 0), (0, 1, 0), (HOUR, 2, 2), (2 * HOUR, 1, 1)]
        );
        assert_eq!(a.status, [0, 1, 1, 1, 1, 1]);
    }
}
