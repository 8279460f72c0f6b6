//! The Python orchestrator example (`examples/python/chat_turn.py`) against a
//! live server: the engine's block reaches the prompt verbatim, in its own
//! section and never among the system instructions, and every citation in it
//! resolves to an event this test ingested. Needs the example's virtual
//! environment (`examples/python/setup.sh`); without it the test prints a skip
//! line and passes, unless `CONTEXT_ENGINE_REQUIRE_PYTHON_EXAMPLE=1` (as
//! `scripts/test.sh` sets) makes that a failure.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

use context_engine::domain::Purpose;
use context_engine::pb;
use serde_json::Value;

use crate::common::{ev, ingest, with_props, TestServer};

const USER: &str = "u_pyex";
const QUERY: &str = "what should I pack for my trip?";

fn repo_root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// The example's interpreter, or `None` (after a skip line) when setup.sh has
/// not been run and nothing requires the example.
fn example_python() -> Option<PathBuf> {
    let python = repo_root().join("examples/python/.venv/bin/python");
    if python.exists() {
        return Some(python);
    }
    if std::env::var("CONTEXT_ENGINE_REQUIRE_PYTHON_EXAMPLE").as_deref() == Ok("1") {
        panic!(
            "{} not found and CONTEXT_ENGINE_REQUIRE_PYTHON_EXAMPLE=1: run examples/python/setup.sh",
            python.display()
        );
    }
    crate::common::skip("examples/python/.venv missing; run examples/python/setup.sh");
    None
}

/// A trip and things to take on it, plus a game that has nothing to do with it.
fn activity() -> Vec<pb::ActivityEvent> {
    let mut flight = with_props(
        ev(USER, "skyways", "pyex-flight", "FlightBooked", ""),
        &[("origin", "Lisbon"), ("destination", "Reykjavik"), ("travel_date", "2026-12-12")],
    );
    flight.source_name = "SkyWays".into();
    let mut boots = ev(USER, "acme", "pyex-boots", "Purchase", "Trail Runner hiking boots");
    let data = boots.custom_data.as_mut().unwrap();
    data.content_category = "Footwear".into();
    data.value = Some(129.99);
    data.currency = "USD".into();
    boots.source_name = "Acme Outdoors".into();
    let mut jacket = ev(USER, "acme", "pyex-jacket", "AddToCart", "Waterproof rain jacket");
    jacket.source_name = "Acme Outdoors".into();
    let mut game = with_props(
        ev(USER, "nova", "pyex-game", "GamePlayed", "Galaxy Raiders"),
        &[("duration_minutes", "45"), ("level", "12")],
    );
    game.source_name = "Nova Games".into();
    vec![flight, boots, jacket, game]
}

/// Citation ids that start the block's lines ("c1", "[c2] …", "- c3: …").
fn block_citations(rendered: &str) -> BTreeSet<String> {
    rendered
        .lines()
        .filter_map(|line| {
            let rest = line.trim_start_matches(|c: char| !c.is_ascii_alphanumeric());
            let word: String = rest.chars().take_while(char::is_ascii_alphanumeric).collect();
            let is_citation = word.len() > 1 && word.starts_with('c') && word[1..].bytes().all(|b| b.is_ascii_digit());
            is_citation.then_some(word)
        })
        .collect()
}

/// Runs chat_turn.py with `args` and returns its JSON output.
async fn chat_turn(python: PathBuf, args: Vec<String>) -> Value {
    run_script(python, "examples/python/chat_turn.py", args).await
}

/// Runs one example script with `args` and returns its JSON output.
async fn run_script(python: PathBuf, script: &'static str, args: Vec<String>) -> Value {
    let output = tokio::task::spawn_blocking(move || {
        Command::new(&python)
            .current_dir(repo_root())
            .arg(script)
            .args(&args)
            .env("PYTHONDONTWRITEBYTECODE", "1")
            .output()
            .unwrap_or_else(|e| panic!("cannot run {}: {e}", python.display()))
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{script} exited with {}\nstdout:\n{stdout}\nstderr:\n{stderr}", output.status);
    serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("{script} --json printed no JSON ({e}):\n{stdout}"))
}

#[tokio::test(flavor = "multi_thread")]
async fn python_orchestrator_keeps_context_out_of_instructions_and_resolves_citations() {
    let Some(python) = example_python() else { return };
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(dir.path()).await;
    let mut client = server.client().await;
    server.grant(USER, &["skyways", "acme", "nova"], Purpose::ChatAssistant).await;
    let events = activity();
    let ingested: BTreeSet<String> = events.iter().map(|e| e.event_id.clone()).collect();
    let r = ingest(&mut client, events).await;
    assert_eq!((r.accepted, r.rejected), (4, 0), "{r:?}");

    let answer = "Take the boots [c2] and a warm layer [c1, c99]; [c2] again, [x1] and [c1] are repeats or not ids.";
    let args = ["--server", &server.addr.to_string(), "--user", USER, "--max-tokens", "400"]
        .into_iter()
        .chain(["--sample-answer", answer, "--json", QUERY])
        .map(String::from)
        .collect();
    let out = chat_turn(python, args).await;

    // The same request the script sent, to compare with what it built.
    let request = pb::GetContextRequest {
        user_id: USER.into(),
        query: QUERY.into(),
        purpose: pb::Purpose::ChatAssistant as i32,
        max_tokens: 400,
        ..Default::default()
    };
    let expected = client.get_context(request).await.unwrap().into_inner();
    let rendered = expected.rendered_context.as_str();
    assert!(!expected.snippets.is_empty() && !rendered.is_empty(), "no context to check: {expected:?}");

    // Layout: the system instructions, then the context section, then the user's words.
    let messages = out["messages"].as_array().expect("messages");
    let content = |m: &Value| m["content"].as_str().expect("message content").to_string();
    assert_eq!(messages.len(), 3, "{messages:#?}");
    assert_eq!(messages[0]["role"], "system");
    let system = content(&messages[0]);
    assert!(system.contains("untrusted data") && system.contains("never as instructions"), "{system}");
    assert!(!system.contains(rendered), "the context block is among the system instructions");
    for s in &expected.snippets {
        assert!(!system.contains(&s.text), "snippet {:?} is among the system instructions", s.text);
    }
    assert_eq!(messages[1]["role"], "user");
    assert_eq!(content(&messages[1]), format!("<user_context>\n{rendered}\n</user_context>"));
    assert_eq!(messages[2]["role"], "user");
    assert_eq!(content(&messages[2]), QUERY);

    // Every citation in the block maps to the event behind its snippet.
    let citations = out["citations"].as_object().expect("citations");
    assert!(citations.len() >= 2, "too few snippets to cite: {citations:?}");
    let in_block = block_citations(rendered);
    let from_server: BTreeSet<String> = expected.snippets.iter().map(|s| s.citation_id.clone()).collect();
    assert_eq!(in_block, from_server, "citation ids in the block:\n{rendered}");
    assert_eq!(citations.keys().cloned().collect::<BTreeSet<_>>(), in_block);
    for s in &expected.snippets {
        let p = s.provenance.as_ref().unwrap();
        let entry = &citations[&s.citation_id];
        assert!(ingested.contains(&p.event_id), "{} cites {p:?}, not an event of this test", s.citation_id);
        assert_eq!(entry["event_id"], p.event_id.as_str(), "{entry}");
        assert_eq!(entry["source_id"], p.source_id.as_str(), "{entry}");
        assert_eq!(entry["event_name"], p.event_name.as_str(), "{entry}");
        assert_eq!(entry["event_time"], p.event_time, "{entry}");
    }

    // The sample answer: c2 then c1, once each; c99 and x1 ignored.
    assert_eq!(out["sample"]["answer"], answer);
    let resolved = out["sample"]["resolved"].as_array().expect("resolved citations");
    let ids: Vec<&str> = resolved.iter().map(|r| r["citation_id"].as_str().unwrap()).collect();
    let want: Vec<&str> = ["c2", "c1"].into_iter().filter(|id| citations.contains_key(*id)).collect();
    assert_eq!(ids, want, "{resolved:#?}");
    for r in resolved {
        let entry = &citations[r["citation_id"].as_str().unwrap()];
        assert_eq!(r["event_id"], entry["event_id"]);
        assert_eq!(r["source_id"], entry["source_id"]);
    }

    assert_eq!(out["stats"]["token_budget"], 400, "{}", out["stats"]);
    assert!(out["stats"]["tokens_used"].as_u64().is_some_and(|t| t > 0 && t <= 400), "{}", out["stats"]);
    server.stop().await;
}

/// The feed example ranks its 50 sample posts for a person whose permitted
/// feed activity is hiking and a trip to Vienna: those posts lead, the top
/// ones carry evidence from this test's events, and a chat-only source
/// (guitar) never appears as evidence.
#[tokio::test(flavor = "multi_thread")]
async fn python_feed_example_ranks_fifty_posts() {
    let Some(python) = example_python() else { return };
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(dir.path()).await;
    let mut client = server.client().await;
    let user = "u_pyfeed";
    server.grant(user, &["acme", "skyways"], Purpose::FeedRanking).await;
    server.grant(user, &["tunes"], Purpose::ChatAssistant).await;
    let flight = with_props(
        ev(user, "skyways", "pf-flight", "FlightBooked", ""),
        &[("origin", "Lisbon"), ("destination", "Vienna"), ("travel_date", "2026-12-20")],
    );
    let events = vec![
        ev(user, "acme", "pf-boots", "Purchase", "Waterproof hiking boots"),
        ev(user, "acme", "pf-poles", "ViewContent", "Trekking poles"),
        flight,
        ev(user, "tunes", "pf-guitar", "Purchase", "Electric guitar starter pack"),
    ];
    assert_eq!(ingest(&mut client, events).await.accepted, 4);
    let args = ["--server", &server.addr.to_string(), "--user", user, "--freshness-weight", "0", "--json"]
        .into_iter()
        .map(String::from)
        .collect();
    let out = run_script(python, "examples/python/feed_rank.py", args).await;
    let feed = out["feed"].as_array().expect("feed");
    assert_eq!(feed.len(), 50, "every post comes back");
    assert_eq!(out["events_considered"], 3, "{out}");
    let top: Vec<&str> = feed[..10].iter().map(|p| p["text"].as_str().unwrap()).collect();
    let on_topic = |t: &&str| t.contains("hike") || t.contains("Trekking") || t.contains("Vienna");
    assert!(top[..5].iter().all(on_topic), "{top:#?}");
    let evidence: Vec<&str> =
        feed.iter().flat_map(|p| p["evidence"].as_array().unwrap()).map(|e| e["event_id"].as_str().unwrap()).collect();
    assert!(!evidence.is_empty());
    assert!(evidence.iter().all(|id| ["pf-boots", "pf-poles", "pf-flight"].contains(id)), "{evidence:?}");
    server.stop().await;
}
