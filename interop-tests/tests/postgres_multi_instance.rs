//! Two and three real keyguard processes on one throw-away PostgreSQL database (see
//! `interop_tests::postgres`), as an operator runs them behind a load balancer.
//!
//! For every validator, round after round, three conflicting pairs, each pair's two
//! members sent at the same moment: a double vote (one target, two roots), a surround (one
//! attestation surrounding the other) and a double proposal (one slot, two roots). Most pairs have their two
//! members sent to two different instances, the rest to one instance (the racing pairs
//! of one process). Exactly one member of every pair must be signed and the other refused
//! with 412; every returned signature must verify against the signing root computed here
//! from the spec, and have its record in the database (complete interchange export),
//! while no loser has one.

use std::collections::HashSet;
use std::time::Instant;

use interop_tests::duties::{database_records, slashable_pairs, verify, Duty, Record};
use interop_tests::instances::{self, Answer};
use interop_tests::keyguard_process::KeyguardProcess;
use interop_tests::postgres::{require_postgres, TestPostgres};

/// Validators signing (interop keys).
const KEYS: usize = 48;
/// Rounds per validator; each round races three pairs.
const ROUNDS: u64 = 16;

/// The three conflicting pairs of round `round` (from 1). Every duty is safe with every
/// duty of the other pairs, whichever member of each pair wins, as long as a validator's
/// attestation pairs are sent in this order (EIP-3076 low watermarks), so the only
/// refusals are the pairs' own conflicts.
fn round_pairs(round: u64) -> [(Duty, Duty); 3] {
    let e = 10 * round;
    let att = |source, target, root| Duty::Attestation {
        source,
        target,
        root,
    };
    [
        // Double vote.
        (att(e, e + 1, 1), att(e, e + 1, 2)),
        // Surround: (e+2, e+5) surrounds (e+3, e+4).
        (att(e + 2, e + 5, 3), att(e + 3, e + 4, 3)),
        // Double proposal.
        (
            Duty::Block {
                slot: 100 * round,
                root: 1,
            },
            Duty::Block {
                slot: 100 * round,
                root: 2,
            },
        ),
    ]
}

/// Which instances the two members of pair `kind` of `round` for validator `v` go to: one
/// pair in four to the same instance, the others to two different ones.
fn route(v: usize, round: u64, kind: usize, instances: usize) -> (usize, usize) {
    let first = (v + round as usize + kind) % instances;
    if (v + round as usize + kind) % 4 == 0 {
        (first, first)
    } else {
        (first, (first + 1) % instances)
    }
}

/// One raced pair and what each member got.
struct Outcome {
    pubkey: String,
    pair: (Duty, Duty),
    answers: (Answer, Answer),
    same_instance: bool,
}

/// Sends both members of one pair at the same moment.
async fn race_pair(
    client: &reqwest::Client,
    urls: &[String],
    pubkey: &str,
    (v, round, kind): (usize, u64, usize),
    (a, b): (Duty, Duty),
) -> Outcome {
    let (ia, ib) = route(v, round, kind, urls.len());
    let answers = tokio::join!(
        instances::sign(client, &urls[ia], pubkey, a.body()),
        instances::sign(client, &urls[ib], pubkey, b.body()),
    );
    Outcome {
        pubkey: pubkey.to_owned(),
        pair: (a, b),
        answers,
        same_instance: ia == ib,
    }
}

/// Every validator runs its rounds in order, and all validators run at once.
async fn race(urls: Vec<String>, keys: Vec<String>) -> Vec<Outcome> {
    let client = instances::client();
    let mut tasks = Vec::new();
    for (v, pubkey) in keys.into_iter().enumerate() {
        let (client, urls) = (client.clone(), urls.clone());
        tasks.push(tokio::spawn(async move {
            let mut outcomes = Vec::new();
            for round in 1..=ROUNDS {
                let [p0, p1, p2] = round_pairs(round);
                // The double vote and the double proposal race together; the surround
                // pair comes after the double vote, whose target would otherwise be at or
                // below the low watermark of an already signed surround member.
                let (o0, o2) = tokio::join!(
                    race_pair(&client, &urls, &pubkey, (v, round, 0), p0),
                    race_pair(&client, &urls, &pubkey, (v, round, 2), p2),
                );
                let o1 = race_pair(&client, &urls, &pubkey, (v, round, 1), p1).await;
                outcomes.extend([o0, o1, o2]);
            }
            outcomes
        }));
    }
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await.expect("client task"));
    }
    all
}

fn run_instances(pg: &TestPostgres, count: usize) {
    let url = pg.create_database().expect("create database");
    let tmp = tempfile::tempdir().expect("tempdir");
    let processes: Vec<KeyguardProcess> = (0..count)
        .map(|i| {
            instances::start(&url, KEYS, &tmp.path().join(format!("i{i}")), tmp.path())
                .expect("start keyguard")
        })
        .collect();
    let urls: Vec<String> = processes.iter().map(|p| p.url.clone()).collect();
    let keys = processes[0].public_keys().expect("public keys");
    assert_eq!(keys.len(), KEYS);

    let started = Instant::now();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(4)
        .enable_all()
        .build()
        .expect("runtime");
    let outcomes = runtime.block_on(race(urls, keys.clone()));
    println!(
        "{count} instances: {} pairs ({} on one instance) in {:.1?}",
        outcomes.len(),
        outcomes.iter().filter(|o| o.same_instance).count(),
        started.elapsed()
    );
    assert_eq!(outcomes.len(), KEYS * ROUNDS as usize * 3);
    assert!(outcomes.iter().any(|o| o.same_instance));
    assert!(outcomes.iter().any(|o| !o.same_instance));

    // Exactly one member of each pair signed, the other refused as slashable.
    let wrong: Vec<String> = outcomes
        .iter()
        .filter(|o| {
            !matches!(
                &o.answers,
                (Answer::Signed(_), Answer::Status(412)) | (Answer::Status(412), Answer::Signed(_))
            )
        })
        .map(|o| format!("{} {:?}: {:?}", o.pubkey, o.pair, o.answers))
        .collect();
    if !wrong.is_empty() {
        let logs: Vec<String> = processes.iter().map(KeyguardProcess::log).collect();
        panic!(
            "{count} instances: {} pairs did not get exactly one signature and one 412:\n{}\n\
             instance logs:\n{}",
            wrong.len(),
            wrong.join("\n"),
            logs.join("\n----\n")
        );
    }
    let mut winners = Vec::new();
    let mut losers = Vec::new();
    for o in &outcomes {
        let (won, lost, sig) = match &o.answers {
            (Answer::Signed(sig), Answer::Status(412)) => (o.pair.0, o.pair.1, sig),
            (Answer::Status(412), Answer::Signed(sig)) => (o.pair.1, o.pair.0, sig),
            _ => unreachable!("checked above"),
        };
        assert!(
            verify(&o.pubkey, &won.signing_root(), sig),
            "{count} instances: the signature of {won:?} for {} does not verify",
            o.pubkey
        );
        winners.push((o.pubkey.clone(), won));
        losers.push((o.pubkey.clone(), lost));
    }
    assert!(slashable_pairs(&winners).is_empty());

    // The database holds exactly the winners: every signature has its record, no loser.
    for p in processes {
        drop(p);
    }
    let records = database_records(&url);
    let expected: HashSet<(String, Record)> = winners
        .iter()
        .map(|(pk, d)| (pk.clone(), d.record()))
        .collect();
    let found: HashSet<(String, Record)> = records
        .iter()
        .flat_map(|(pk, rs)| rs.iter().map(move |r| (pk.clone(), r.clone())))
        .collect();
    for (pk, lost) in &losers {
        assert!(
            !found.contains(&(pk.clone(), lost.record())),
            "{count} instances: the refused {lost:?} of {pk} has a record"
        );
    }
    assert_eq!(
        found, expected,
        "{count} instances: the database records differ from the signatures returned"
    );
}

#[test]
fn conflicting_pairs_across_two_and_three_instances_sign_exactly_one() {
    let Some(pg) =
        require_postgres("conflicting_pairs_across_two_and_three_instances_sign_exactly_one")
    else {
        return;
    };
    run_instances(&pg, 2);
    run_instances(&pg, 3);
}
