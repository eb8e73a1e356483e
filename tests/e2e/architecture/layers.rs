//! The server's layers as invariants of absence (ARCHITECTURE.md, "Architecture
//! invariants"), checked over `crates/flagpole-server/src`.
//!
//! Each invariant is a row of [`ABSENCES`]: which top-level modules it covers and what
//! must not appear in their code. A row states what a newcomer may rely on ("`http/`
//! contains no SQL"), so a failure names the file and line that broke it and the
//! sentence it broke. The module graph is checked for cycles on top: dependencies run one
//! way, from the HTTP edge down to the store.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::LazyLock;

use flagpole_tests::workspace_root;
use regex::Regex;

use super::source::Source;

/// One file of the server, with the top-level module it belongs to (`http` for
/// `src/http/flags.rs`, `db` for `src/db.rs`, `lib` for `src/lib.rs`).
pub(crate) struct ServerFile {
    pub(crate) module: String,
    pub(crate) path: PathBuf,
    pub(crate) source: Source,
}

/// Which top-level modules a row covers.
enum Scope {
    /// These modules.
    Only(&'static [&'static str]),
    /// Every module but these.
    AllBut(&'static [&'static str]),
}

impl Scope {
    fn covers(&self, module: &str) -> bool {
        match self {
            Scope::Only(names) => names.contains(&module),
            Scope::AllBut(names) => !names.contains(&module),
        }
    }
}

/// What must be absent.
enum Forbidden {
    /// SQL: a string literal that reads as a statement, or a call of sqlx's query API.
    Sql,
    /// Paths or names in code (matched at word boundaries, comments and strings ignored).
    Names(&'static [&'static str]),
}

/// One invariant of absence.
struct Absence {
    /// The invariant as ARCHITECTURE.md states it.
    invariant: &'static str,
    within: Scope,
    forbidden: Forbidden,
}

/// The server's layering, as data. `lib` (the crate root: `App`, `run`) wires every layer
/// together and is the one module allowed to name them all.
const ABSENCES: &[Absence] = &[
    Absence {
        invariant: "SQL lives only in store/ (db.rs opens, migrates and begins transactions)",
        within: Scope::AllBut(&["store", "db"]),
        forbidden: Forbidden::Sql,
    },
    Absence {
        invariant: "a write transaction is begun only in domain/ (one write, one domain \
                    function) or store/ (maintenance such as pruning, not a user's write)",
        // testing.rs seeds databases for tests and benchmarks, below the domain on purpose.
        within: Scope::AllBut(&["domain", "store", "db", "testing"]),
        forbidden: Forbidden::Names(&["begin_write"]),
    },
    Absence {
        invariant: "store/ knows nothing of HTTP, AppState, push, auth or the domain",
        within: Scope::Only(&["store"]),
        forbidden: Forbidden::Names(&[
            "axum",
            "AppState",
            "ApiError",
            "ApiResult",
            "crate::http",
            "crate::error",
            "crate::state",
            "crate::push",
            "crate::auth",
            "crate::domain",
            "crate::snapshots",
        ]),
    },
    Absence {
        invariant: "domain/ knows nothing of HTTP: it takes parsed input and an actor",
        within: Scope::Only(&["domain"]),
        forbidden: Forbidden::Names(&["axum", "crate::http"]),
    },
    Absence {
        invariant: "auth/ holds credential logic, not HTTP: the extractors live in http/",
        within: Scope::Only(&["auth"]),
        forbidden: Forbidden::Names(&["axum", "crate::http"]),
    },
];

/// The server's source files.
pub(crate) fn server_files() -> Vec<ServerFile> {
    let src = workspace_root().join("crates/flagpole-server/src");
    let mut files = Vec::new();
    for entry in ignore::WalkBuilder::new(&src).build() {
        let entry = entry.expect("walk crates/flagpole-server/src");
        let path = entry.path();
        if path.extension().is_none_or(|e| e != "rs") {
            continue;
        }
        let relative = path.strip_prefix(&src).expect("under src");
        let first = relative
            .components()
            .next()
            .expect("a file has a name")
            .as_os_str()
            .to_string_lossy();
        let module = first.trim_end_matches(".rs").to_owned();
        let text = std::fs::read_to_string(path).expect("read a source file");
        files.push(ServerFile {
            module,
            path: relative.to_path_buf(),
            source: Source::lex(&text),
        });
    }
    assert!(
        files.len() > 20 && files.iter().any(|f| f.module == "store"),
        "found only {} files under {}: has the server moved?",
        files.len(),
        src.display()
    );
    files
}

/// Statement openings, lowercase as the project writes SQL, and uppercase for safety.
static SQL_TEXT: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"(?i)^\s*(select\s.+\sfrom\s|insert\s+into\s|update\s+\w+\s+set\s|delete\s+from\s|with\s+\w+(\s*\([^)]*\))?\s+as\s*\(|create\s+(table|index|unique)\s|alter\s+table\s|drop\s+(table|index)\s|listen\s|notify\s|begin(\s|$)|select\s+(pg_notify|1|max|count|exists)\b)",
    )
    .expect("valid regex")
});

/// sqlx's ways of running a statement, named through `sqlx::` (a call or an import: a
/// `store::query` of our own is not one).
static SQL_CALL: LazyLock<Regex> = LazyLock::new(|| {
    let api = r"(query|query_as|query_scalar|query_with|raw_sql|QueryBuilder)";
    Regex::new(&format!(r"\bsqlx\s*::\s*(\{{[^}}]*\b{api}\b|{api}\b)")).expect("valid regex")
});

/// sqlx's `PgListener` methods that run `LISTEN`/`UNLISTEN` (a method call: `x.listen(`),
/// looked for only in files that name `PgListener` (a TCP socket's `listen` is no SQL).
static LISTEN_CALL: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"\.\s*(listen|listen_all|unlisten|unlisten_all)\s*\(").expect("valid regex")
});

/// The places in `file` that contain what `forbidden` names, as `line: what`.
fn occurrences(file: &ServerFile, forbidden: &Forbidden) -> Vec<String> {
    let mut found = Vec::new();
    match forbidden {
        Forbidden::Sql => {
            for (line, text) in &file.source.strings {
                if SQL_TEXT.is_match(text) {
                    let shown: String = text.split_whitespace().collect::<Vec<_>>().join(" ");
                    found.push(format!("{line}: SQL {:?}", truncate(&shown, 70)));
                }
            }
            for m in SQL_CALL.find_iter(&file.source.code) {
                found.push(format!(
                    "{}: sqlx call `{}`",
                    file.source.line_of(m.start()),
                    m.as_str().split_whitespace().collect::<String>()
                ));
            }
            let listens = LISTEN_CALL.find_iter(&file.source.code);
            if !word_matches(&file.source.code, "PgListener").is_empty() {
                for m in listens {
                    found.push(format!(
                        "{}: LISTEN through `{}`",
                        file.source.line_of(m.start()),
                        m.as_str().split_whitespace().collect::<String>()
                    ));
                }
            }
        }
        Forbidden::Names(names) => {
            for name in *names {
                for offset in word_matches(&file.source.code, name) {
                    found.push(format!("{}: `{name}`", file.source.line_of(offset)));
                }
            }
        }
    }
    found
}

fn truncate(text: &str, max: usize) -> String {
    match text.char_indices().nth(max) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text.to_owned(),
    }
}

/// Offsets where `name` occurs not as part of a longer identifier or path segment
/// (`crate::http` matches `crate::http::x` and `crate::http;`, not `crate::https`).
fn word_matches(code: &str, name: &str) -> Vec<usize> {
    let ident = |c: char| c.is_alphanumeric() || c == '_';
    code.match_indices(name)
        .filter(|(at, _)| {
            let before = code[..*at].chars().next_back();
            let after = code[at + name.len()..].chars().next();
            !before.is_some_and(ident) && !after.is_some_and(ident)
        })
        .map(|(at, _)| at)
        .collect()
}

/// Every violation of every row of [`ABSENCES`] in `files`, grouped by invariant.
fn violations(files: &[ServerFile]) -> BTreeMap<&'static str, Vec<String>> {
    let mut broken: BTreeMap<&'static str, Vec<String>> = BTreeMap::new();
    for absence in ABSENCES {
        for file in files.iter().filter(|f| absence.within.covers(&f.module)) {
            for place in occurrences(file, &absence.forbidden) {
                broken
                    .entry(absence.invariant)
                    .or_default()
                    .push(format!("src/{}:{place}", file.path.display()));
            }
        }
    }
    broken
}

/// Which top-level modules each module's code names (`crate::x`), itself excluded.
pub(crate) fn module_graph(files: &[ServerFile]) -> BTreeMap<String, BTreeSet<String>> {
    static CRATE_PATH: LazyLock<Regex> =
        LazyLock::new(|| Regex::new(r"\bcrate::([a-z_][a-z0-9_]*)").expect("valid regex"));
    let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for file in files {
        let edges = graph.entry(file.module.clone()).or_default();
        for captures in CRATE_PATH.captures_iter(&file.source.code) {
            let target = &captures[1];
            if target != file.module {
                edges.insert(target.to_owned());
            }
        }
    }
    graph
}

/// A cycle in `graph`, as the modules along it, if there is one.
pub(crate) fn find_cycle(graph: &BTreeMap<String, BTreeSet<String>>) -> Option<Vec<String>> {
    #[derive(Clone, Copy, PartialEq)]
    enum Mark {
        Open,
        Done,
    }
    fn visit(
        node: &str,
        graph: &BTreeMap<String, BTreeSet<String>>,
        marks: &mut BTreeMap<String, Mark>,
        stack: &mut Vec<String>,
    ) -> Option<Vec<String>> {
        match marks.get(node) {
            Some(Mark::Done) => return None,
            Some(Mark::Open) => {
                let from = stack
                    .iter()
                    .position(|n| n == node)
                    .expect("open is on the stack");
                let mut cycle = stack[from..].to_vec();
                cycle.push(node.to_owned());
                return Some(cycle);
            }
            None => {}
        }
        marks.insert(node.to_owned(), Mark::Open);
        stack.push(node.to_owned());
        for next in graph.get(node).into_iter().flatten() {
            if let Some(cycle) = visit(next, graph, marks, stack) {
                return Some(cycle);
            }
        }
        stack.pop();
        marks.insert(node.to_owned(), Mark::Done);
        None
    }
    let mut marks = BTreeMap::new();
    graph
        .keys()
        .find_map(|node| visit(node, graph, &mut marks, &mut Vec::new()))
}

#[test]
fn server_layers_hold() {
    let files = server_files();
    let report: Vec<String> = violations(&files)
        .into_iter()
        .map(|(invariant, places)| format!("{invariant}:\n  {}", places.join("\n  ")))
        .collect();
    assert!(
        report.is_empty(),
        "the server's layers are broken (ARCHITECTURE.md, Architecture invariants):\n{}",
        report.join("\n")
    );
}

#[test]
fn server_modules_depend_one_way() {
    let files = server_files();
    let mut graph = module_graph(&files);
    // The crate root wires every layer together, and testing.rs (test support, behind a
    // feature) seeds through any of them; nothing names either back but tests.
    graph.remove("lib");
    graph.remove("testing");
    for edges in graph.values_mut() {
        edges.remove("testing");
    }
    if let Some(cycle) = find_cycle(&graph) {
        panic!(
            "the server's modules import each other in a circle: {}\n(dependencies run one \
             way, from the HTTP edge down to the store; see ARCHITECTURE.md)",
            cycle.join(" -> ")
        );
    }
}

/// The checks themselves can fail: each row and the cycle check catch a planted
/// violation, and leave clean code alone.
#[test]
fn the_checks_catch_planted_violations() {
    let file = |module: &str, text: &str| ServerFile {
        module: module.to_owned(),
        path: Path::new(module).join("planted.rs"),
        source: Source::lex(text),
    };
    let sql = file(
        "http",
        "async fn h() { sqlx::query(\"select id from flag where key = $1\").execute(c); }\n\
         use sqlx::{Row, query_scalar};",
    );
    let broken = violations(std::slice::from_ref(&sql));
    let places = &broken[ABSENCES[0].invariant];
    assert_eq!(places.len(), 3, "{places:?}");
    assert!(
        places[0].contains("SQL \"select id from flag"),
        "{places:?}"
    );
    assert!(places[1].contains("sqlx call `sqlx::query`"), "{places:?}");
    assert!(
        places[2].starts_with("src/http/planted.rs:2: sqlx call"),
        "{places:?}"
    );

    let listen = file(
        "push",
        "use sqlx::postgres::PgListener;\nlistener.listen(CHANNEL).await?;\n\
         notify::listen(push, cache, shutdown);",
    );
    let places = &violations(&[listen])[ABSENCES[0].invariant];
    assert_eq!(places.len(), 1, "{places:?}");
    assert!(
        places[0].contains(":2: LISTEN through `.listen(`"),
        "{places:?}"
    );
    let tcp = file("lib", "socket.bind(addr)?;\nsocket.listen(LISTEN_BACKLOG)");
    assert!(violations(&[tcp]).is_empty());

    let tx = file("http", "let tx = state.db.begin_write().await?;");
    assert!(violations(&[tx]).contains_key(ABSENCES[1].invariant));

    let up = file(
        "store",
        "use crate::push::Push;\nfn f() -> crate::error::ApiResult<()> {}",
    );
    let places = &violations(&[up])[ABSENCES[2].invariant];
    assert_eq!(places.len(), 3, "{places:?}");

    let clean = file(
        "http",
        "//! Says select x from y and crate::store in prose.\n\
         /// `crate::push` in a doc comment.\n\
         use crate::store::flag; let msg = \"selected from the list\";\n\
         let items = store::query(&mut conn, &filter).await?;\n",
    );
    assert!(violations(&[clean]).is_empty());

    let circle = [
        file("state", "use crate::auth::AuthState;"),
        file("auth", "use crate::push::Push;"),
        file("push", "fn f(s: &crate::state::AppState) {}"),
        file("store", "use crate::db::Db;"),
    ];
    let cycle = find_cycle(&module_graph(&circle)).expect("a planted cycle is found");
    assert_eq!(cycle.first(), cycle.last());
    assert_eq!(cycle.len(), 4, "{cycle:?}");
    assert!(find_cycle(&module_graph(&circle[1..])).is_none());
}
