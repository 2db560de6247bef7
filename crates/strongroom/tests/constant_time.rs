//! A lint, run as a test: production code compares secrets in constant time. Any `==` or
//! `!=` whose operands name a secret (a MAC, a verification pattern, a hash of the audit
//! chain or of an API key secret, a nonce, a PIN, a password, a token or key of the node)
//! fails it; such comparisons go through `CryptoProvider::ct_eq` (aws-lc's
//! `verify_slices_are_equal`) or a type whose `PartialEq` is constant-time (`Vp`, through
//! `subtle`). Length checks (`x.len() != n`) compare public lengths and pass. A line that
//! compares public values under a secret-sounding name, or through a constant-time
//! `PartialEq`, says so with `// ct-exempt: why` on it or on the line above.

use std::path::{Path, PathBuf};

/// Parts of identifiers (split at `_`) that name secrets.
const SECRET_PARTS: &[&str] = &[
    "secret",
    "mac",
    "hmac",
    "vp",
    "hash",
    "nonce",
    "pin",
    "password",
    "passphrase",
];
/// Whole identifiers that name secrets.
const SECRET_NAMES: &[&str] = &[
    "check_value",
    "api_key",
    "apikey",
    "admin_token",
    "access_token",
    "token_key",
    "audit_key",
    "bearer",
];

fn names_a_secret(ident: &str) -> bool {
    // SCREAMING_CASE names constants (`CKO_SECRET_KEY`, `CKR_PIN_INCORRECT`): kinds, not values.
    if ident.chars().any(|c| c.is_ascii_alphabetic())
        && !ident.chars().any(|c| c.is_ascii_lowercase())
    {
        return false;
    }
    let lower = ident.to_ascii_lowercase();
    SECRET_NAMES.contains(&lower.as_str())
        || lower.split('_').any(|part| SECRET_PARTS.contains(&part))
}

/// The code of a line without its comment and string literals.
fn code_of(line: &str) -> String {
    let mut out = String::new();
    let mut in_str = false;
    let mut prev = ' ';
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        if in_str {
            if c == '"' && prev != '\\' {
                in_str = false;
                out.push('"');
            }
        } else if c == '"' {
            in_str = true;
            out.push('"');
        } else if c == '/' && chars.peek() == Some(&'/') {
            break;
        } else {
            out.push(c);
        }
        prev = if prev == '\\' && c == '\\' { ' ' } else { c };
    }
    out
}

/// The operand around position `at` (where an `==`/`!=` operator starts), in direction
/// `dir`: up to a boolean operator, a bracket that opens or closes the expression, or a
/// separator.
fn operand(code: &str, at: usize, forward: bool) -> String {
    let bytes = code.as_bytes();
    let mut depth = 0i32;
    let mut out = Vec::new();
    let mut i = at as isize;
    loop {
        if i < 0 || i as usize >= bytes.len() {
            break;
        }
        let c = bytes[i as usize] as char;
        let (open, close) = if forward { ('(', ')') } else { (')', '(') };
        if c == open || c == '[' && forward || c == ']' && !forward {
            depth += 1;
        } else if c == close || c == ']' && forward || c == '[' && !forward {
            if depth == 0 {
                break;
            }
            depth -= 1;
        } else if depth == 0
            && matches!(c, ',' | ';' | '{' | '}' | '|' | '&' | '=' | '!' | '<' | '>')
        {
            // `&x` and `!x` as prefixes belong to the operand when read forward.
            let prefix = forward && matches!(c, '&' | '!') && out.iter().all(|&o: &char| o == ' ');
            if !prefix {
                break;
            }
        }
        out.push(c);
        i += if forward { 1 } else { -1 };
    }
    if !forward {
        out.reverse();
    }
    out.into_iter().collect()
}

/// The comparisons of secrets on one line of code.
fn secret_comparisons(line: &str) -> Vec<String> {
    if line.contains("ct-exempt:") {
        return vec![];
    }
    let code = code_of(line);
    let mut found = Vec::new();
    let b = code.as_bytes();
    for i in 0..b.len().saturating_sub(1) {
        let op = match &b[i..i + 2] {
            b"==" => "==",
            b"!=" => "!=",
            _ => continue,
        };
        // Not part of `===`-like runs, `<=`, `>=` or `=>`.
        if i > 0 && matches!(b[i - 1], b'=' | b'<' | b'>' | b'!') || b.get(i + 2) == Some(&b'=') {
            continue;
        }
        let left = operand(&code, i.wrapping_sub(1), false);
        let right = operand(&code, i + 2, true);
        for side in [&left, &right] {
            if side.contains(".len()") || side.contains("len(") {
                continue;
            }
            // What a call returns is compared, not its arguments.
            let side = without_arguments(side);
            let secret = side
                .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .any(names_a_secret);
            if secret {
                found.push(format!("{} {op} {}", left.trim(), right.trim()));
                break;
            }
        }
    }
    found
}

/// `f(a, b).g(c)` → `f().g()`.
fn without_arguments(s: &str) -> String {
    let mut out = String::new();
    let mut depth = 0;
    for c in s.chars() {
        match c {
            '(' => {
                if depth == 0 {
                    out.push('(');
                }
                depth += 1;
            }
            ')' => {
                depth -= 1;
                if depth == 0 {
                    out.push(')');
                }
            }
            _ if depth == 0 => out.push(c),
            _ => {}
        }
    }
    out
}

fn production_sources(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let p = e.path();
        let name = p.file_name().and_then(|n| n.to_str()).unwrap_or("");
        if p.is_dir() {
            if !matches!(name, "tests" | "target" | "benches" | "examples") {
                production_sources(&p, out);
            }
        } else if name.ends_with(".rs") && name != "tests.rs" && !name.starts_with("tests_") {
            out.push(p);
        }
    }
}

#[test]
fn the_lint_finds_what_it_should() {
    for bad in [
        "if reg.vp != vp {",
        "if r.prev_hash != prev {",
        "let ok = mac == expected;",
        "if token.access_token == other {",
        "return secret_hash == &computed;",
        "if x && nonce != tok.nonce || y {",
        "assert(stored_pin == pin);",
        "if hash(data) == expected {",
    ] {
        assert!(!secret_comparisons(bad).is_empty(), "missed: {bad}");
    }
    for good in [
        "if mac.len() != 32 {",
        "if !p.ct_eq(&r.prev_hash, &prev) {",
        "let same = vp_a.len() == 32;",
        "if state == KeyState::Active {",
        "let s = \"vp == x\";",
        "if a == b { // the vp is compared elsewhere",
        "if public_vp == shown { // ct-exempt: both are published",
        "Some(v) => v >= hash_min,",
        "match x { Some(h) => h, None => 0 }",
        "if class != cko::SECRET_KEY {",
        "if set_md(c, hash) != 1 {",
    ] {
        assert!(secret_comparisons(good).is_empty(), "false alarm: {good}");
    }
}

#[test]
fn production_code_compares_secrets_in_constant_time() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let mut files = Vec::new();
    production_sources(&root, &mut files);
    assert!(files.len() > 100, "found only {} source files", files.len());
    let mut problems = Vec::new();
    for f in &files {
        let text = std::fs::read_to_string(f).unwrap();
        // Unit-test modules sit at the end of a file, after `#[cfg(test)]`.
        let production = text.split("#[cfg(test)]").next().unwrap_or("");
        let lines: Vec<&str> = production.lines().collect();
        for (n, line) in lines.iter().enumerate() {
            // An exemption sits on the line or on the line above.
            if n > 0 && lines[n - 1].trim_start().starts_with("// ct-exempt:") {
                continue;
            }
            for c in secret_comparisons(line) {
                problems.push(format!("{}:{}: {c}", f.display(), n + 1));
            }
        }
    }
    assert!(
        problems.is_empty(),
        "secrets compared with == or != (use CryptoProvider::ct_eq, or mark a public value \
         with `// ct-exempt: why`):\n{}",
        problems.join("\n")
    );
}
