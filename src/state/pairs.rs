//! The standing of every route × seed pair ([`crate::standing`]): kept between probes and
//! across restarts, so that a restart neither forgets a confirmed break (and pages again for
//! it) nor a confirmation probe in flight.

use rusqlite::params;

use super::StateError;
use super::probes::ProbeStore;
use crate::standing::{InFlight, PairState, Problem, Standing};

impl ProbeStore {
    /// Stores a pair's standing.
    pub fn save_pair(&self, route: &str, seed: &str, pair: &Standing) -> Result<(), StateError> {
        let c = pair.confirmation.as_ref();
        let counted = pair.counted_until.is_finite().then_some(pair.counted_until);
        self.exec(
            "INSERT INTO pairs (instance, route, seed, state, since, problem, counted_until, confirmation_id, confirmation_created_at, confirmation_overdue) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10) \
             ON CONFLICT (instance, route, seed) DO UPDATE SET state = ?4, since = ?5, problem = ?6, counted_until = ?7, \
             confirmation_id = ?8, confirmation_created_at = ?9, confirmation_overdue = ?10",
            params![
                self.instance(),
                route,
                seed,
                pair.state.as_str(),
                pair.since,
                pair.problem.map(Problem::as_str),
                counted,
                c.map(|c| c.probe_id.as_str()),
                c.map(|c| c.created_at),
                c.is_some_and(|c| c.overdue),
            ],
        )?;
        Ok(())
    }

    /// Every pair's standing as stored: (route, seed, standing).
    pub fn pairs(&self) -> Result<Vec<(String, String, Standing)>, StateError> {
        let c = self.conn();
        let mut stmt = c.prepare(
            "SELECT route, seed, state, since, problem, counted_until, confirmation_id, confirmation_created_at, confirmation_overdue \
             FROM pairs WHERE instance = ?1 ORDER BY seed, route",
        )?;
        let rows = stmt
            .query_map(params![self.instance()], |r| {
                let confirmation =
                    match (r.get::<_, Option<String>>(6)?, r.get::<_, Option<f64>>(7)?) {
                        (Some(probe_id), Some(created_at)) => Some(InFlight {
                            probe_id,
                            created_at,
                            overdue: r.get::<_, i64>(8)? != 0,
                        }),
                        _ => None,
                    };
                let pair = Standing {
                    state: PairState::parse(&r.get::<_, String>(2)?).unwrap_or(PairState::Ok),
                    since: r.get(3)?,
                    problem: r
                        .get::<_, Option<String>>(4)?
                        .as_deref()
                        .and_then(Problem::parse),
                    counted_until: r.get::<_, Option<f64>>(5)?.unwrap_or(f64::NEG_INFINITY),
                    confirmation,
                };
                Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?, pair))
            })?
            .collect::<Result<Vec<_>, _>>()?;
        Ok(rows)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_standing_round_trips_and_belongs_to_its_instance() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("s.sqlite");
        let a = ProbeStore::open(&path, "a").expect("open");
        let mut pair = Standing::default();
        pair.on_outcome(
            "p1",
            10.0,
            crate::standing::Outcome::Bad(Problem::Spam),
            11.0,
        );
        pair.confirmation_sent("c1", 11.0);
        a.save_pair("good", "s1", &pair).expect("save");
        assert_eq!(
            a.pairs().expect("pairs"),
            vec![("good".to_string(), "s1".to_string(), pair.clone())]
        );
        pair.on_outcome("c1", 11.0, crate::standing::Outcome::Good, 12.0);
        a.save_pair("good", "s1", &pair).expect("save again");
        assert_eq!(a.pairs().expect("pairs")[0].2.state, PairState::Ok);
        assert_eq!(a.pairs().expect("pairs")[0].2.confirmation, None);
        let b = ProbeStore::open(&path, "b").expect("open");
        assert!(
            b.pairs().expect("pairs").is_empty(),
            "another instance's pairs"
        );
    }
}
