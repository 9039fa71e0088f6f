//! suricata-verify's check semantics, which are Python's.
//!
//! suricata-verify's runner (`run.py` and its shared `runner` helpers, OISF/suricata-verify)
//! loads `eve.json` with `json.loads` and `test.yaml` with PyYAML's `safe_load`, then compares
//! with Python operators. To count exactly the cases it counts, this module models the values
//! both loaders produce as [`Py`] and re-implements the operators the checks use:
//!
//! - `==` ([`Py::py_eq`]): values of different types are unequal (`"9" != 9`), except that
//!   Python's numbers compare by value across `bool`, `int` and `float` (`True == 1 == 1.0`);
//!   lists compare element by element, dicts key by key; a missing field and JSON `null` are
//!   both `None`, which equals only `None`.
//! - `in` ([`Py::py_in`]): substring for strings, element for lists, key for dicts; anything
//!   else is a `TypeError`, which the runner turns into "no match".
//! - `str()` ([`Py::py_str`]) for `__find` / `__startswith` / `__endswith`: `True`, `None`,
//!   `1.0`, `['a', 'b']` as Python prints them.
//! - `len()` for `.__len`: code points of a string, elements of a list, keys of a dict, `-1`
//!   for anything without a length.
//! - `__gt` / `__gte` / `__lt` / `__lte`: numbers only, and never a `bool`.
//!
//! Known differences, none of which can turn a failing case into a pass: integers beyond
//! `i64`/`u64` in `eve.json` are read as floats by `serde_json` (Python keeps them exact), and
//! an `int` compared with a `float` by `__gt` and friends is compared as `f64`.

use serde_json::Value as Json;
use serde_yaml_ng::Value as Yaml;

/// A Python value as `json.loads` or `yaml.safe_load` produces it.
#[derive(Debug, Clone, PartialEq)]
pub enum Py {
    /// `None`: JSON `null`, YAML `null`/`~`, and what `find_value` returns for a missing key.
    None,
    /// `bool`.
    Bool(bool),
    /// `int` (exact for everything either loader produces here).
    Int(i128),
    /// `float`.
    Float(f64),
    /// `str`.
    Str(String),
    /// `list`.
    List(Vec<Py>),
    /// `dict`, in insertion order.
    Dict(Vec<(Py, Py)>),
}

/// The operator suffixes a match key may end in, as a dotted path component
/// (`smtp.helo.__startswith`); `find_value` stops at them.
pub const MATCH_OPERATORS: &[&str] = &["__contains", "__find", "__startswith", "__endswith"];

/// The numeric comparison suffixes (`stats.decoder.pkts.__gt`).
pub const COMPARISON_OPERATORS: &[&str] = &["__gt", "__gte", "__lt", "__lte"];

impl Py {
    /// The value `json.loads` gives for `v`.
    pub fn from_json(v: &Json) -> Py {
        match v {
            Json::Null => Py::None,
            Json::Bool(b) => Py::Bool(*b),
            Json::Number(n) => number(n.as_i64(), n.as_u64(), n.as_f64()),
            Json::String(s) => Py::Str(s.clone()),
            Json::Array(a) => Py::List(a.iter().map(Py::from_json).collect()),
            Json::Object(o) => Py::Dict(
                o.iter()
                    .map(|(k, v)| (Py::Str(k.clone()), Py::from_json(v)))
                    .collect(),
            ),
        }
    }

    /// The value `yaml.safe_load` gives for `v` (see [`pyyaml_reads_differently`] for the
    /// scalars where PyYAML's YAML 1.1 rules and this crate's loader disagree).
    pub fn from_yaml(v: &Yaml) -> Py {
        match v {
            Yaml::Null => Py::None,
            Yaml::Bool(b) => Py::Bool(*b),
            Yaml::Number(n) => number(n.as_i64(), n.as_u64(), n.as_f64()),
            Yaml::String(s) => Py::Str(s.clone()),
            Yaml::Sequence(s) => Py::List(s.iter().map(Py::from_yaml).collect()),
            Yaml::Mapping(m) => Py::Dict(
                m.iter()
                    .map(|(k, v)| (Py::from_yaml(k), Py::from_yaml(v)))
                    .collect(),
            ),
            Yaml::Tagged(t) => Py::from_yaml(&t.value),
        }
    }

    /// Python's `self == other`.
    pub fn py_eq(&self, other: &Py) -> bool {
        use Py::*;
        match (self, other) {
            (None, None) => true,
            (Str(a), Str(b)) => a == b,
            (List(a), List(b)) => a.len() == b.len() && a.iter().zip(b).all(|(x, y)| x.py_eq(y)),
            (Dict(a), Dict(b)) => {
                a.len() == b.len()
                    && a.iter().all(|(k, v)| {
                        b.iter()
                            .find(|(k2, _)| k.py_eq(k2))
                            .is_some_and(|(_, v2)| v.py_eq(v2))
                    })
            }
            _ => match (self.numeric(), other.numeric()) {
                (Some(a), Some(b)) => num_eq(a, b),
                _ => false,
            },
        }
    }

    /// Python's `needle in self`; `None` where Python raises `TypeError` (which the runner's
    /// `__contains` treats as "no match").
    pub fn py_in(&self, needle: &Py) -> Option<bool> {
        match self {
            Py::Str(hay) => match needle {
                Py::Str(n) => Some(hay.contains(n.as_str())),
                _ => Option::None,
            },
            Py::List(items) => Some(items.iter().any(|x| x.py_eq(needle))),
            Py::Dict(entries) => {
                if matches!(needle, Py::List(_) | Py::Dict(_)) {
                    // unhashable type
                    return Option::None;
                }
                Some(entries.iter().any(|(k, _)| k.py_eq(needle)))
            }
            _ => Option::None,
        }
    }

    /// Python's `len(self)`, `None` where Python raises `TypeError`.
    pub fn py_len(&self) -> Option<usize> {
        match self {
            Py::Str(s) => Some(s.chars().count()),
            Py::List(l) => Some(l.len()),
            Py::Dict(d) => Some(d.len()),
            _ => Option::None,
        }
    }

    /// Python's `str(self)`.
    pub fn py_str(&self) -> String {
        match self {
            Py::Str(s) => s.clone(),
            other => other.py_repr(),
        }
    }

    /// Python's `repr(self)`.
    pub fn py_repr(&self) -> String {
        match self {
            Py::None => "None".into(),
            Py::Bool(true) => "True".into(),
            Py::Bool(false) => "False".into(),
            Py::Int(i) => i.to_string(),
            Py::Float(f) => float_repr(*f),
            Py::Str(s) => str_repr(s),
            Py::List(l) => format!(
                "[{}]",
                l.iter().map(Py::py_repr).collect::<Vec<_>>().join(", ")
            ),
            Py::Dict(d) => format!(
                "{{{}}}",
                d.iter()
                    .map(|(k, v)| format!("{}: {}", k.py_repr(), v.py_repr()))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        }
    }

    /// The number a `bool`, `int` or `float` stands for in arithmetic comparisons.
    fn numeric(&self) -> Option<Num> {
        match self {
            Py::Bool(b) => Some(Num::Int(i128::from(*b))),
            Py::Int(i) => Some(Num::Int(*i)),
            Py::Float(f) => Some(Num::Float(*f)),
            _ => Option::None,
        }
    }
}

fn number(i: Option<i64>, u: Option<u64>, f: Option<f64>) -> Py {
    if let Some(i) = i {
        Py::Int(i128::from(i))
    } else if let Some(u) = u {
        Py::Int(i128::from(u))
    } else {
        Py::Float(f.unwrap_or(f64::NAN))
    }
}

#[derive(Clone, Copy)]
enum Num {
    Int(i128),
    Float(f64),
}

/// Python compares an `int` and a `float` exactly (`2**53 + 1 != 2.0**53`).
fn num_eq(a: Num, b: Num) -> bool {
    match (a, b) {
        (Num::Int(x), Num::Int(y)) => x == y,
        (Num::Float(x), Num::Float(y)) => x == y,
        (Num::Int(i), Num::Float(f)) | (Num::Float(f), Num::Int(i)) => {
            f.is_finite() && f.fract() == 0.0 && f.abs() < 1.7e38 && f as i128 == i
        }
    }
}

/// suricata-verify's `compare_values`: `None` unless both are numbers and neither is a `bool`
/// (then "no match"); otherwise `actual OP expected`.
pub fn compare_values(actual: &Py, expected: &Py, op: &str) -> bool {
    let as_f = |p: &Py| match p {
        Py::Int(i) => Some(*i as f64),
        Py::Float(f) => Some(*f),
        _ => Option::None,
    };
    let (Some(a), Some(b)) = (as_f(actual), as_f(expected)) else {
        return false;
    };
    if let (Py::Int(x), Py::Int(y)) = (actual, expected) {
        return match op {
            "__gt" => x > y,
            "__gte" => x >= y,
            "__lt" => x < y,
            "__lte" => x <= y,
            _ => false,
        };
    }
    match op {
        "__gt" => a > b,
        "__gte" => a >= b,
        "__lt" => a < b,
        "__lte" => a <= b,
        _ => false,
    }
}

/// Python's `repr(float)`: the shortest string that reads back to the same value, in fixed
/// notation when the decimal exponent is in `-4..16`, else `1e+16` / `1.5e-05` style.
pub fn float_repr(f: f64) -> String {
    if f.is_nan() {
        return "nan".into();
    }
    if f.is_infinite() {
        return if f > 0.0 { "inf" } else { "-inf" }.into();
    }
    if f == 0.0 {
        return if f.is_sign_negative() { "-0.0" } else { "0.0" }.into();
    }
    // `{:e}` gives the shortest round-trip digits: `1.2345e-5`, `1e16`.
    let sci = format!("{f:e}");
    let (mantissa, exp) = sci.split_once('e').unwrap_or((sci.as_str(), "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    let negative = mantissa.starts_with('-');
    let digits: String = mantissa.chars().filter(char::is_ascii_digit).collect();
    let sign = if negative { "-" } else { "" };
    if (-4..16).contains(&exp) {
        let body = if exp >= 0 {
            let int_len = exp as usize + 1;
            if digits.len() <= int_len {
                format!("{digits}{}.0", "0".repeat(int_len - digits.len()))
            } else {
                format!("{}.{}", &digits[..int_len], &digits[int_len..])
            }
        } else {
            format!("0.{}{digits}", "0".repeat((-exp - 1) as usize))
        };
        format!("{sign}{body}")
    } else {
        let m = mantissa.trim_start_matches('-');
        let esign = if exp < 0 { '-' } else { '+' };
        format!("{sign}{m}e{esign}{:02}", exp.abs())
    }
}

/// Python's `repr(str)`: single quotes unless the text holds `'` and no `"`.
fn str_repr(s: &str) -> String {
    let quote = if s.contains('\'') && !s.contains('"') {
        '"'
    } else {
        '\''
    };
    let mut out = String::with_capacity(s.len() + 2);
    out.push(quote);
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c == quote => {
                out.push('\\');
                out.push(c);
            }
            c if c.is_control() => {
                let n = c as u32;
                if n < 0x100 {
                    out.push_str(&format!("\\x{n:02x}"));
                } else {
                    out.push_str(&format!("\\u{n:04x}"));
                }
            }
            c => out.push(c),
        }
    }
    out.push(quote);
    out
}

/// suricata-verify's `find_value(name, obj)`: walks the dotted path (`a.b[1].c`); a `__len`
/// component returns the length (`-1` for a value without one); a component that is an
/// operator suffix stops the walk and returns the value reached; a missing key, an index out
/// of range or a step into something that is not a dict gives `None`.
pub fn find_value(name: &str, obj: &Py) -> Py {
    let parts: Vec<&str> = name.split('.').collect();
    walk(&parts, obj)
}

fn walk(parts: &[&str], obj: &Py) -> Py {
    let mut cur = obj;
    for (n, part) in parts.iter().enumerate() {
        if *part == "__len" {
            return Py::Int(cur.py_len().map_or(-1, |n| n as i128));
        }
        if MATCH_OPERATORS.contains(part) || COMPARISON_OPERATORS.contains(part) {
            break;
        }
        let (key, index) = split_index(part);
        let Py::Dict(entries) = cur else {
            return Py::None;
        };
        let Some((_, v)) = entries
            .iter()
            .find(|(k, _)| matches!(k, Py::Str(s) if s == key))
        else {
            return Py::None;
        };
        cur = v;
        if let Some(i) = index {
            let Some(i) = i else { return Py::None };
            match cur {
                Py::List(l) => match l.get(i) {
                    Some(v) => cur = v,
                    Option::None => return Py::None,
                },
                // Indexing a string gives a one-character string; the walk goes on from it.
                Py::Str(s) => {
                    let Some(c) = s.chars().nth(i) else {
                        return Py::None;
                    };
                    return walk(&parts[n + 1..], &Py::Str(c.to_string()));
                }
                Py::Dict(d) => match d
                    .iter()
                    .find(|(k, _)| matches!(k, Py::Int(k) if *k == i as i128))
                {
                    Some((_, v)) => cur = v,
                    Option::None => return Py::None,
                },
                _ => return Py::None,
            }
        }
    }
    cur.clone()
}

/// `^(.*)\[(\d+)\]$`: `("rcpt_to", Some(Some(0)))` for `rcpt_to[0]`; the inner `None` is an
/// index too large for memory, which Python answers with `IndexError` (→ `None`).
pub fn split_index(part: &str) -> (&str, Option<Option<usize>>) {
    if let Some((name, idx)) = part.strip_suffix(']').and_then(|p| p.rsplit_once('[')) {
        if !idx.is_empty() && idx.bytes().all(|b| b.is_ascii_digit()) {
            return (name, Some(idx.parse::<usize>().ok()));
        }
    }
    (part, None)
}

/// The comparison operator of a key (`x.__gt` → `__gt`): the text after its last dot, as
/// suricata-verify's `get_comparison_operator` reads it.
pub fn comparison_operator(key: &str) -> Option<&'static str> {
    let last = key.rsplit('.').next().unwrap_or(key);
    COMPARISON_OPERATORS.iter().copied().find(|op| *op == last)
}

/// suricata-verify's `match_event`: whether `event` satisfies every entry of `matchers`.
/// `Err` where the Python code raises (a non-string key or `has-key` path), which fails the
/// filter check.
pub fn match_event(matchers: &[(Py, Py)], event: &Py) -> Result<bool, String> {
    for (key, expected) in matchers {
        let Py::Str(key) = key else {
            return Err(format!("match key {} is not a string", key.py_repr()));
        };
        if key == "has-key" || key == "not-has-key" {
            let items: Vec<&Py> = match expected {
                Py::List(l) => l.iter().collect(),
                other => vec![other],
            };
            for item in items {
                let Py::Str(path) = item else {
                    return Err(format!("{key} path {} is not a string", item.py_repr()));
                };
                let present = find_value(path, event) != Py::None;
                if present != (key == "has-key") {
                    return Ok(false);
                }
            }
            continue;
        }
        let val = find_value(key, event);
        let holds = if key.ends_with("__find") {
            val != Py::None && val.py_str().contains(&expected.py_str())
        } else if key.ends_with("__contains") {
            val != Py::None && val.py_in(expected).unwrap_or(false)
        } else if key.ends_with("__startswith") {
            val != Py::None && val.py_str().starts_with(&expected.py_str())
        } else if key.ends_with("__endswith") {
            val != Py::None && val.py_str().ends_with(&expected.py_str())
        } else if let Some(op) = comparison_operator(key) {
            compare_values(&val, expected, op)
        } else {
            val.py_eq(expected)
        };
        if !holds {
            return Ok(false);
        }
    }
    Ok(true)
}

/// Whether PyYAML (YAML 1.1, which suricata-verify loads `test.yaml` with) could read the
/// scalar that this crate's loader (YAML 1.2) read as the string `s` as something other than
/// a string: `yes`/`no`/`on`/`off` are booleans there, `1_000` and `0b1` and `1:30` are
/// integers, `2002-12-14` is a date. The parsed value does not say whether the text was
/// quoted (then it is a string in both), so such a value makes the case a skip.
pub fn pyyaml_reads_differently(s: &str) -> bool {
    const BOOLS: &[&str] = &[
        "yes", "Yes", "YES", "no", "No", "NO", "on", "On", "ON", "off", "Off", "OFF",
    ];
    if BOOLS.contains(&s) {
        return true;
    }
    let body = s.strip_prefix(['-', '+']).unwrap_or(s);
    let digitish = |t: &str| !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit() || b == b'_');
    // 1.1 integers and floats with `_` separators, binary, sexagesimal (`190:20:30`).
    if body.contains('_') && digitish(&body.replace('.', "")) {
        return true;
    }
    if let Some(b) = body.strip_prefix("0b") {
        if !b.is_empty() && b.bytes().all(|c| matches!(c, b'0' | b'1' | b'_')) {
            return true;
        }
    }
    if body.contains(':') {
        let mut parts = body.split(':');
        let first = parts.next().unwrap_or_default();
        let rest: Vec<&str> = parts.collect();
        let last_ok = |p: &str| {
            let p = p.split_once('.').map_or(p, |(a, _)| a);
            !p.is_empty() && p.len() <= 2 && p.bytes().all(|b| b.is_ascii_digit())
        };
        if digitish(first) && !first.starts_with('0') && rest.iter().all(|p| last_ok(p)) {
            return true;
        }
    }
    // Timestamps: YYYY-MM-DD, optionally followed by a time.
    let b = s.as_bytes();
    if b.len() >= 8
        && b[..4].iter().all(u8::is_ascii_digit)
        && b[4] == b'-'
        && is_date_tail(&s[5..])
    {
        return true;
    }
    false
}

/// `M?M-D?D` with an optional PyYAML time part, after `YYYY-`.
fn is_date_tail(t: &str) -> bool {
    let mut it = t.splitn(2, '-');
    let month = it.next().unwrap_or_default();
    let Some(rest) = it.next() else { return false };
    let day_len = rest.bytes().take_while(u8::is_ascii_digit).count();
    if !(1..=2).contains(&month.len())
        || !month.bytes().all(|b| b.is_ascii_digit())
        || !(1..=2).contains(&day_len)
    {
        return false;
    }
    let time = &rest[day_len..];
    if time.is_empty() {
        return true;
    }
    // `T12:00:00[.frac][ ]*(Z|+HH[:MM])`, anchored at the end like PyYAML's resolver.
    let time = time
        .strip_prefix(['T', 't'])
        .unwrap_or_else(|| time.trim_start_matches([' ', '\t']));
    let hms_len = time
        .bytes()
        .take_while(|b| b.is_ascii_digit() || *b == b':')
        .count();
    let hms: Vec<&str> = time[..hms_len].split(':').collect();
    if hms.len() != 3 || !(1..=2).contains(&hms[0].len()) || hms[1].len() != 2 || hms[2].len() != 2
    {
        return false;
    }
    let mut tail = &time[hms_len..];
    if let Some(f) = tail.strip_prefix('.') {
        tail = f.trim_start_matches(|c: char| c.is_ascii_digit());
    }
    let tail = tail.trim_start_matches([' ', '\t']);
    if tail.is_empty() || tail == "Z" {
        return true;
    }
    let Some(tz) = tail.strip_prefix(['+', '-']) else {
        return false;
    };
    let (h, m) = tz.split_once(':').unwrap_or((tz, ""));
    (1..=2).contains(&h.len())
        && h.bytes().all(|b| b.is_ascii_digit())
        && (m.is_empty() || (m.len() == 2 && m.bytes().all(|b| b.is_ascii_digit())))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn y(text: &str) -> Py {
        Py::from_yaml(&serde_yaml_ng::from_str::<Yaml>(text).unwrap())
    }
    fn j(v: Json) -> Py {
        Py::from_json(&v)
    }
    fn m(key: &str, expected: &str, ev: Json) -> bool {
        match_event(&[(Py::Str(key.into()), y(expected))], &j(ev)).unwrap()
    }

    /// Rule: `val != expected` is Python `!=`: a string never equals a number.
    #[test]
    fn different_types_are_unequal() {
        let ev = serde_json::json!({"alert": {"signature_id": 9}, "tcp": {"tcp_flags": "1b"}});
        assert!(m("alert.signature_id", "9", ev.clone()));
        assert!(!m("alert.signature_id", "'9'", ev.clone()));
        assert!(m("tcp.tcp_flags", "1b", ev.clone()));
        assert!(!m("tcp.tcp_flags", "0x1b", ev.clone()));
        let s = serde_json::json!({"n": "02"});
        assert!(!m("n", "2", s.clone()));
        assert!(m("n", "'02'", s));
    }

    /// Rule: Python numbers compare by value: `True == 1 == 1.0`, `False == 0`.
    #[test]
    fn python_numeric_tower() {
        assert!(y("true").py_eq(&j(serde_json::json!(1))));
        assert!(y("false").py_eq(&j(serde_json::json!(0))));
        assert!(y("1.0").py_eq(&j(serde_json::json!(1))));
        assert!(y("1").py_eq(&j(serde_json::json!(1.0))));
        assert!(!y("1.5").py_eq(&j(serde_json::json!(1))));
        assert!(!y("true").py_eq(&j(serde_json::json!(2))));
        assert!(!y("true").py_eq(&j(serde_json::json!("True"))));
        // Exact int/float comparison: 2**53 + 1 is not 2.0**53.
        assert!(!Py::Int((1 << 53) + 1).py_eq(&Py::Float(9007199254740992.0)));
    }

    /// Rule: a missing key and JSON null are both `None`; `None == None`.
    #[test]
    fn none_semantics() {
        let ev = serde_json::json!({"a": null, "b": 1});
        assert!(m("a", "null", ev.clone()));
        assert!(m("missing", "~", ev.clone()));
        assert!(!m("b", "null", ev.clone()));
        // has-key on a null-valued field is false: find_value returns None.
        assert!(!m("has-key", "a", ev.clone()));
        assert!(m("not-has-key", "a", ev));
    }

    /// Rule: lists and dicts compare element-wise with Python `==`.
    #[test]
    fn containers_compare_elementwise() {
        let ev = serde_json::json!({"vlan": [1, 10], "o": {"a": 1, "b": "x"}});
        assert!(m("vlan", "[1, 10]", ev.clone()));
        assert!(m("vlan", "[true, 10.0]", ev.clone()));
        assert!(!m("vlan", "[1, '10']", ev.clone()));
        assert!(!m("vlan", "[1]", ev.clone()));
        assert!(m("o", "{b: x, a: 1}", ev.clone()));
        assert!(!m("o", "{a: 1}", ev));
    }

    /// Rule: `find_value` walks dots and `[i]`; `__len` returns `len()` or -1; operator
    /// components stop the walk; stepping into a non-dict gives None.
    #[test]
    fn find_value_rules() {
        let ev = j(
            serde_json::json!({"a":{"b":[{"c":1},{"c":2}]},"s":"héllo","n":5,"z":null,"o":{"x":1}}),
        );
        assert_eq!(find_value("a.b[1].c", &ev), Py::Int(2));
        assert_eq!(find_value("a.b[2].c", &ev), Py::None);
        assert_eq!(find_value("a.b.__len", &ev), Py::Int(2));
        assert_eq!(
            find_value("s.__len", &ev),
            Py::Int(5),
            "code points, not bytes"
        );
        assert_eq!(find_value("o.__len", &ev), Py::Int(1));
        assert_eq!(find_value("n.__len", &ev), Py::Int(-1));
        assert_eq!(find_value("z.__len", &ev), Py::Int(-1));
        assert_eq!(find_value("missing.__len", &ev), Py::None);
        assert_eq!(find_value("s[1]", &ev), Py::Str("é".into()));
        assert_eq!(find_value("n.x", &ev), Py::None);
        assert_eq!(find_value("s.__endswith", &ev), Py::Str("héllo".into()));
        assert_eq!(find_value("n.__gt", &ev), Py::Int(5));
        assert_eq!(find_value("a.x", &ev), Py::None);
    }

    /// Rule: the operators are path components (`proto.__endswith`), as the suite writes
    /// them; the same operators glued to the field (`proto__endswith`) are a literal key
    /// name to suricata-verify, which no record has.
    #[test]
    fn operator_spellings() {
        let ev = serde_json::json!({"proto": "TCP", "vlan": [1, 10], "s": {"pkts": 7}});
        assert!(m("proto.__endswith", "CP", ev.clone()));
        assert!(!m("proto.__endswith", "UDP", ev.clone()));
        assert!(m("proto.__startswith", "TC", ev.clone()));
        assert!(m("proto.__find", "C", ev.clone()));
        assert!(m("vlan.__contains", "10", ev.clone()));
        assert!(!m("vlan.__contains", "'10'", ev.clone()));
        assert!(m("s.pkts.__gt", "6", ev.clone()));
        assert!(m("s.pkts.__gte", "7", ev.clone()));
        assert!(!m("s.pkts.__lt", "7", ev.clone()));
        assert!(m("s.pkts.__lte", "7.0", ev.clone()));
        assert!(m("vlan.__len", "2", ev.clone()));
        assert!(m("vlan.__len.__gt", "1", ev.clone()));
        // Undotted: a literal key lookup that finds nothing, so never a match.
        assert!(!m("proto__endswith", "CP", ev.clone()));
        assert!(!m("vlan__contains", "10", ev.clone()));
        assert!(!m("s.pkts__gt", "1", ev));
    }

    /// Rule: `__find`/`__startswith`/`__endswith` compare `str()` forms; `None` never
    /// matches.
    #[test]
    fn string_operators_use_python_str() {
        let ev = serde_json::json!({"b": true, "f": 1.0, "l": ["a", "b"], "n": 425});
        assert!(m("b.__find", "True", ev.clone()));
        assert!(
            m("b.__find", "true", ev.clone()),
            "str(True) finds str(True)"
        );
        assert!(!m("b.__find", "'true'", ev.clone()));
        assert!(m("f.__endswith", "'.0'", ev.clone()));
        assert!(m("l.__startswith", "\"['a', \"", ev.clone()));
        assert!(m("n.__startswith", "42", ev.clone()));
        assert!(!m("missing.__find", "None", ev));
    }

    /// Rule: `__contains` is Python `in`; a TypeError (a number, None) is no match.
    #[test]
    fn contains_is_python_in() {
        let ev = serde_json::json!({"s": "abc", "l": [1, "x"], "d": {"k": 1}, "n": 5});
        assert!(m("s.__contains", "b", ev.clone()));
        assert!(!m("s.__contains", "1", ev.clone()), "int in str: TypeError");
        assert!(m("l.__contains", "1.0", ev.clone()));
        assert!(m("l.__contains", "x", ev.clone()));
        assert!(m("d.__contains", "k", ev.clone()));
        assert!(!m("n.__contains", "5", ev.clone()));
        assert!(!m("missing.__contains", "5", ev));
    }

    /// Rule: comparison operators accept numbers only, never bools.
    #[test]
    fn comparisons_reject_bools_and_strings() {
        let ev = serde_json::json!({"b": true, "s": "5", "n": 5});
        assert!(!m("b.__gte", "0", ev.clone()));
        assert!(!m("n.__gte", "true", ev.clone()));
        assert!(!m("s.__gt", "1", ev.clone()));
        assert!(m("n.__gt", "4.5", ev));
    }

    /// Rule: has-key / not-has-key take one path or a list; a non-string path raises.
    #[test]
    fn key_presence() {
        let ev = serde_json::json!({"a": {"b": 1}, "c": [1]});
        assert!(m("has-key", "[a.b, 'c[0]']", ev.clone()));
        assert!(!m("has-key", "[a.b, 'c[1]']", ev.clone()));
        assert!(m("not-has-key", "[a.x, 'c[1]']", ev.clone()));
        assert!(!m("not-has-key", "a.b", ev.clone()));
        assert!(match_event(&[(Py::Str("has-key".into()), y("1"))], &j(ev)).is_err());
    }

    #[test]
    fn python_reprs() {
        assert_eq!(float_repr(1.0), "1.0");
        assert_eq!(float_repr(0.1), "0.1");
        assert_eq!(float_repr(1e16), "1e+16");
        assert_eq!(float_repr(1.5e-5), "1.5e-05");
        assert_eq!(float_repr(0.0001), "0.0001");
        assert_eq!(float_repr(123456.789), "123456.789");
        assert_eq!(float_repr(-2.5), "-2.5");
        assert_eq!(float_repr(4.150007324019584), "4.150007324019584");
        assert_eq!(y("[a, 1, true, null]").py_str(), "['a', 1, True, None]");
        assert_eq!(Py::Str("it's".into()).py_repr(), "\"it's\"");
        assert_eq!(y("{a: 1}").py_str(), "{'a': 1}");
    }

    /// Rule: PyYAML reads `yes`/`on`, `1_000`, `1:30` and dates as non-strings.
    #[test]
    fn yaml_11_scalars() {
        for s in [
            "yes",
            "Off",
            "1_000",
            "0b101",
            "1:30",
            "2002-12-14",
            "2001-12-14t21:59:43.10-05:00",
        ] {
            assert!(pyyaml_reads_differently(s), "{s}");
        }
        for s in [
            "y",
            "TCP",
            "1b",
            "10.0.0.1",
            "2009-10-16T16:44:16.083524+0000",
            "12:34:56:78:9a:bc",
            "a-b",
        ] {
            assert!(!pyyaml_reads_differently(s), "{s}");
        }
    }
}
