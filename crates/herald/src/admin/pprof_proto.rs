//! The pprof profile format (`perftools.profiles.Profile`, profile.proto), as prost types,
//! and the conversion from a sampled report. Go's `pprof` tool and most profiling UIs read
//! it.

use std::collections::HashMap;

use prost::Message;

#[derive(Clone, PartialEq, Message)]
pub(crate) struct Profile {
    #[prost(message, repeated, tag = "1")]
    sample_type: Vec<ValueType>,
    #[prost(message, repeated, tag = "2")]
    sample: Vec<Sample>,
    #[prost(message, repeated, tag = "4")]
    location: Vec<Location>,
    #[prost(message, repeated, tag = "5")]
    function: Vec<Function>,
    #[prost(string, repeated, tag = "6")]
    string_table: Vec<String>,
    #[prost(int64, tag = "9")]
    time_nanos: i64,
    #[prost(int64, tag = "10")]
    duration_nanos: i64,
    #[prost(message, optional, tag = "11")]
    period_type: Option<ValueType>,
    #[prost(int64, tag = "12")]
    period: i64,
}

#[derive(Clone, PartialEq, Message)]
struct ValueType {
    #[prost(int64, tag = "1")]
    r#type: i64,
    #[prost(int64, tag = "2")]
    unit: i64,
}

#[derive(Clone, PartialEq, Message)]
struct Sample {
    #[prost(uint64, repeated, tag = "1")]
    location_id: Vec<u64>,
    #[prost(int64, repeated, tag = "2")]
    value: Vec<i64>,
}

#[derive(Clone, PartialEq, Message)]
struct Location {
    #[prost(uint64, tag = "1")]
    id: u64,
    #[prost(message, repeated, tag = "4")]
    line: Vec<Line>,
}

#[derive(Clone, PartialEq, Message)]
struct Line {
    #[prost(uint64, tag = "1")]
    function_id: u64,
    #[prost(int64, tag = "2")]
    line: i64,
}

#[derive(Clone, PartialEq, Message)]
struct Function {
    #[prost(uint64, tag = "1")]
    id: u64,
    #[prost(int64, tag = "2")]
    name: i64,
    #[prost(int64, tag = "3")]
    system_name: i64,
    #[prost(int64, tag = "4")]
    filename: i64,
}

/// Builds a profile by interning strings, functions and locations.
#[derive(Default)]
struct Builder {
    profile: Profile,
    strings: HashMap<String, i64>,
    functions: HashMap<(String, String), u64>,
    locations: HashMap<Vec<(u64, i64)>, u64>,
}

impl Builder {
    fn string(&mut self, s: &str) -> i64 {
        if let Some(&i) = self.strings.get(s) {
            return i;
        }
        let i = self.profile.string_table.len() as i64;
        self.profile.string_table.push(s.to_owned());
        self.strings.insert(s.to_owned(), i);
        i
    }

    fn function(&mut self, name: &str, file: &str) -> u64 {
        if let Some(&id) = self.functions.get(&(name.to_owned(), file.to_owned())) {
            return id;
        }
        let id = self.profile.function.len() as u64 + 1;
        let (name_i, file_i) = (self.string(name), self.string(file));
        self.profile.function.push(Function {
            id,
            name: name_i,
            system_name: name_i,
            filename: file_i,
        });
        self.functions
            .insert((name.to_owned(), file.to_owned()), id);
        id
    }

    fn location(&mut self, lines: Vec<(u64, i64)>) -> u64 {
        if let Some(&id) = self.locations.get(&lines) {
            return id;
        }
        let id = self.profile.location.len() as u64 + 1;
        let line = lines
            .iter()
            .map(|&(function_id, line)| Line { function_id, line })
            .collect();
        self.profile.location.push(Location { id, line });
        self.locations.insert(lines, id);
        id
    }
}

/// The pprof encoding of a sampled report taken at `frequency` Hz over `duration`.
pub(crate) fn encode(
    report: &pprof::Report,
    frequency: i32,
    duration: std::time::Duration,
) -> Vec<u8> {
    let mut b = Builder::default();
    b.string("");
    let period = 1_000_000_000 / i64::from(frequency.max(1));
    let (samples, count, cpu, nanos) = (
        b.string("samples"),
        b.string("count"),
        b.string("cpu"),
        b.string("nanoseconds"),
    );
    b.profile.sample_type = vec![
        ValueType {
            r#type: samples,
            unit: count,
        },
        ValueType {
            r#type: cpu,
            unit: nanos,
        },
    ];
    b.profile.period_type = Some(ValueType {
        r#type: cpu,
        unit: nanos,
    });
    b.profile.period = period;
    b.profile.duration_nanos = i64::try_from(duration.as_nanos()).unwrap_or(i64::MAX);
    b.profile.time_nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_nanos()).unwrap_or(0))
        .unwrap_or(0);
    for (frames, &n) in &report.data {
        let mut location_id = Vec::with_capacity(frames.frames.len());
        for symbols in &frames.frames {
            let lines: Vec<(u64, i64)> = symbols
                .iter()
                .map(|symbol| {
                    let file = symbol
                        .filename
                        .as_ref()
                        .map(|f| f.display().to_string())
                        .unwrap_or_default();
                    let function = b.function(&symbol.name(), &file);
                    (function, i64::from(symbol.lineno.unwrap_or(0)))
                })
                .collect();
            location_id.push(b.location(lines));
        }
        let n = n as i64;
        b.profile.sample.push(Sample {
            location_id,
            value: vec![n, n * period],
        });
    }
    b.profile.encode_to_vec()
}
