//! What a container listens on, and what that says about a readiness probe that was refused or
//! reset. Pure: parses the kernel's socket tables (`/proc/<pid>/net/tcp` and `tcp6`), a process's
//! `/proc/<pid>/stat` line and the service's own log lines, and turns them into a [`Diagnosis`]
//! with the cause and the fix. Reading those texts is [`super::sockets`]' job.
//!
//! A probe goes through Docker's port publishing, which forwards to the container's own address:
//! a service that listens only on loopback (`127.0.0.0/8`, `::1`) inside the container is never
//! reached, however long one waits.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::OnceLock;
use std::time::Duration;

/// The socket state `LISTEN` in the kernel's tables (`TCP_LISTEN`, printed in hex).
const TCP_LISTEN: &str = "0A";
/// Docker's embedded DNS server listens on `127.0.0.11` inside containers of user-defined
/// networks: not the service.
const DOCKER_DNS: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 11);

/// A TCP socket in the `LISTEN` state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Listener {
    /// The local address it is bound to (`0.0.0.0`/`::` for every address).
    pub addr: IpAddr,
    /// The local port.
    pub port: u16,
}

impl Listener {
    /// Bound to loopback only (`127.0.0.0/8`, `::1`, or `::ffff:127.x.y.z`).
    pub fn is_loopback(&self) -> bool {
        match self.addr {
            IpAddr::V4(a) => a.is_loopback(),
            IpAddr::V6(a) => a.is_loopback() || a.to_ipv4_mapped().is_some_and(|a| a.is_loopback()),
        }
    }
}

impl fmt::Display for Listener {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.addr {
            IpAddr::V4(a) => write!(f, "{a}:{}", self.port),
            IpAddr::V6(a) => write!(f, "[{a}]:{}", self.port),
        }
    }
}

/// The listening sockets of one or more kernel socket tables (`/proc/net/tcp`, `/proc/net/tcp6`,
/// or both concatenated, as `cat /proc/net/tcp /proc/net/tcp6` prints them), sorted, without
/// duplicates. Other states (established, `TIME_WAIT`, …) are skipped.
///
/// Addresses are printed by the kernel as 32-bit words in the machine's byte order; this reads
/// them as the little-endian machines (x86-64, arm64) print them. Ports are big-endian hex.
pub fn parse_tcp_table(text: &str) -> Result<Vec<Listener>, String> {
    let mut header = false;
    let mut listeners = Vec::new();
    for line in text.lines() {
        let fields: Vec<&str> = line.split_whitespace().collect();
        match fields.first() {
            None => continue,
            Some(&"sl") => {
                header = true;
                continue;
            }
            Some(slot)
                if fields.len() >= 4
                    && slot.strip_suffix(':').is_some_and(|n| {
                        !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit())
                    }) => {}
            Some(_) => return Err(format!("not a socket table line: `{}`", line.trim())),
        }
        if fields[3] != TCP_LISTEN {
            continue;
        }
        listeners.push(
            parse_local(fields[1]).ok_or_else(|| {
                format!("cannot read the address `{}` of a socket table", fields[1])
            })?,
        );
    }
    if !header {
        return Err("no socket table (no `sl  local_address …` header)".into());
    }
    listeners.sort();
    listeners.dedup();
    Ok(listeners)
}

/// `0100007F:0BB8` -> 127.0.0.1:3000; 32 hex digits before the colon for IPv6.
fn parse_local(field: &str) -> Option<Listener> {
    let (addr, port) = field.split_once(':')?;
    let port = u16::from_str_radix(port, 16).ok()?;
    let word = |hex: &str| u32::from_str_radix(hex, 16).ok().map(u32::to_le_bytes);
    let addr = match addr.len() {
        8 => IpAddr::V4(Ipv4Addr::from(word(addr)?)),
        32 => {
            let mut bytes = [0u8; 16];
            for (i, chunk) in bytes.chunks_mut(4).enumerate() {
                chunk.copy_from_slice(&word(addr.get(i * 8..i * 8 + 8)?)?);
            }
            IpAddr::V6(Ipv6Addr::from(bytes))
        }
        _ => return None,
    };
    Some(Listener { addr, port })
}

/// A process as `/proc/<pid>/stat` describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProcessState {
    /// Its pid (as the reader sees it).
    pub pid: u32,
    /// The kernel's name for it (the executable's, cut at 15 bytes).
    pub name: String,
    /// The state letter: `R` running, `S` sleeping, `D` waiting on I/O, `Z` zombie, `T` stopped…
    pub state: char,
    /// Threads.
    pub threads: u64,
    /// User and system CPU time used so far.
    pub cpu: Duration,
}

impl ProcessState {
    fn state_name(&self) -> &'static str {
        match self.state {
            'R' => "running",
            'S' => "sleeping",
            'D' => "waiting on I/O",
            'Z' => "a zombie",
            'T' | 't' => "stopped",
            'X' | 'x' => "dead",
            'I' => "idle",
            _ => "in an unknown state",
        }
    }
}

impl fmt::Display for ProcessState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "`{}` (pid {} on this host) is {} ({}), {} thread{}, {:.2}s of CPU",
            self.name,
            self.pid,
            self.state_name(),
            self.state,
            self.threads,
            if self.threads == 1 { "" } else { "s" },
            self.cpu.as_secs_f64()
        )
    }
}

/// Parses one `/proc/<pid>/stat` line; `ticks_per_second` is the kernel's clock tick
/// (`sysconf(_SC_CLK_TCK)`, 100 on Linux). The name may hold spaces and parentheses: it ends at
/// the last `)`.
pub fn parse_stat(text: &str, ticks_per_second: u64) -> Option<ProcessState> {
    let open = text.find('(')?;
    let close = text.rfind(')')?;
    let pid = text[..open].trim().parse().ok()?;
    let name = text.get(open + 1..close)?.to_owned();
    // Fields from the third (state) on; the numbers are the fields of proc(5).
    let rest: Vec<&str> = text[close + 1..].split_whitespace().collect();
    let field = |n: usize| -> Option<u64> { rest.get(n - 3)?.parse().ok() };
    let state = rest.first()?.chars().next()?;
    let ticks = field(14)? + field(15)?;
    Some(ProcessState {
        pid,
        name,
        state,
        threads: field(20)?,
        cpu: Duration::from_millis(ticks * 1000 / ticks_per_second.max(1)),
    })
}

/// What the container's sockets say about a probe of `port` that was refused or reset.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Diagnosis {
    /// Something listens on the port on an address the published port reaches (every address,
    /// or the container's own): the refusal came from the service, or came before it listened.
    Reachable(Listener),
    /// The port listens on loopback only: the probe can never succeed.
    Loopback(Vec<Listener>),
    /// Nothing listens on the port, but the service listens on ports the manifest does not
    /// declare: most likely the service's port is another than `expose`/`test.ready` say.
    OtherPort(Vec<Listener>),
    /// Nothing listens on the port (yet); the other sockets, if any, are on declared ports.
    NotListening(Vec<Listener>),
}

impl Diagnosis {
    /// Whether waiting cannot help: the service binds loopback, or listens on another port.
    pub fn is_conclusive(&self) -> bool {
        matches!(self, Diagnosis::Loopback(_) | Diagnosis::OtherPort(_))
    }
}

/// What the listening sockets say about a probe of container port `port`; `declared` are the
/// container ports the manifest names (`expose`, `test.ready`, `test.http`), `port` among them.
pub fn diagnose(port: u16, declared: &[u16], listeners: &[Listener]) -> Diagnosis {
    let on_port: Vec<Listener> = listeners
        .iter()
        .filter(|l| l.port == port)
        .copied()
        .collect();
    if let Some(reachable) = on_port.iter().find(|l| !l.is_loopback()) {
        return Diagnosis::Reachable(*reachable);
    }
    if !on_port.is_empty() {
        return Diagnosis::Loopback(on_port);
    }
    let others: Vec<Listener> = listeners
        .iter()
        .filter(|l| l.addr != IpAddr::V4(DOCKER_DNS))
        .copied()
        .collect();
    let undeclared: Vec<Listener> = others
        .iter()
        .filter(|l| !declared.contains(&l.port))
        .copied()
        .collect();
    if undeclared.is_empty() {
        Diagnosis::NotListening(others)
    } else {
        Diagnosis::OtherPort(undeclared)
    }
}

fn list(listeners: &[Listener]) -> String {
    listeners
        .iter()
        .map(Listener::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

/// The fix for a service bound to loopback on `port`.
pub fn bind_fix(port: u16) -> String {
    format!("bind 0.0.0.0:{port} (or [::]:{port})")
}

/// The cause and the fix, in one or two sentences, for a probe of container port `port`.
pub fn explain(diagnosis: &Diagnosis, port: u16) -> String {
    match diagnosis {
        Diagnosis::Reachable(l) => format!("the service listens on {l}"),
        Diagnosis::Loopback(on_port) => format!(
            "the service binds loopback inside the container: it listens on {} only, which \
             Docker's published port cannot reach; {}",
            list(on_port),
            bind_fix(port)
        ),
        Diagnosis::OtherPort(others) => {
            let mut ports: Vec<u16> = others.iter().map(|l| l.port).collect();
            ports.dedup();
            let first = ports[0];
            let mut text = format!(
                "nothing listens on port {port} in the container, but the service listens on \
                 {}: if {first} is its port, set `expose = [{first}]` and the port of \
                 `test.ready` (`tcp = [{first}]` or `http.port = {first}`) in \
                 [package.metadata.docker]; otherwise make it listen on {port}",
                list(others)
            );
            if others.iter().all(Listener::is_loopback) {
                text.push_str(&format!(
                    ". It also binds loopback inside the container, which Docker's published \
                     port cannot reach: {}",
                    bind_fix(first)
                ));
            }
            text
        }
        Diagnosis::NotListening(others) if others.is_empty() => {
            format!("nothing listens on any TCP port in the container (expected port {port})")
        }
        Diagnosis::NotListening(others) => format!(
            "nothing listens on port {port} in the container (it listens on {})",
            list(others)
        ),
    }
}

/// A loopback address with its port named in a log line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogHint {
    /// The address as the log writes it: `127.0.0.1:3000`, `[::1]:8080`, `localhost:3000`.
    pub addr: String,
    /// Its port.
    pub port: u16,
    /// The whole line, without terminal colour codes.
    pub line: String,
}

impl LogHint {
    /// One sentence naming the address, the line and the fix.
    pub fn explain(&self, logs: &str) -> String {
        let mut text = format!(
            "its log names a loopback address, {} (`{}`): a service bound to loopback inside \
             the container cannot be reached through the published port; {}",
            self.addr,
            self.line,
            bind_fix(self.port)
        );
        if self.addr.starts_with('[')
            && (logs.contains("Cannot assign requested address") || logs.contains("os error 99"))
        {
            text.push_str(
                " (this container has no IPv6 loopback address: binding [::1] fails with \
                 `Cannot assign requested address`)",
            );
        }
        text
    }
}

/// The last log line that names a loopback address with a port (`listening on 127.0.0.1:3000`).
pub fn loopback_in_log(logs: &str) -> Option<LogHint> {
    static ADDR: OnceLock<regex::Regex> = OnceLock::new();
    static ANSI: OnceLock<regex::Regex> = OnceLock::new();
    let addr = ADDR.get_or_init(|| {
        regex::Regex::new(
            r"(?i)(?:\b127(?:\.\d{1,3}){3}|\blocalhost|\[::1\]|\[0:0:0:0:0:0:0:1\]):(\d{1,5})\b",
        )
        .expect("a valid pattern")
    });
    let ansi =
        ANSI.get_or_init(|| regex::Regex::new(r"\x1b\[[0-9;?]*[A-Za-z]").expect("a valid pattern"));
    logs.lines().rev().find_map(|line| {
        let line = ansi.replace_all(line, "");
        let found = addr.captures(&line)?;
        Some(LogHint {
            addr: found[0].to_owned(),
            port: found[1].parse().ok()?,
            line: line.trim().to_owned(),
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    // Real tables, read on the development machine (Linux 5.x, x86-64, Docker 20.10).

    /// `/proc/<pid>/net/tcp` of a container running `httpd -f -p 127.0.0.1:3000`.
    const CONTAINER_TCP: &str = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode                                                     
   0: 0100007F:0BB8 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 429353 1 000000007647070f 100 0 0 10 0                    
";
    /// `/proc/<pid>/net/tcp6` of the same container, with `httpd -f -p 3002` (every address).
    const CONTAINER_TCP6: &str = "  sl  local_address                         remote_address                        st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 00000000000000000000000000000000:0BBA 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 429354 1 00000000fc98456f 100 0 0 10 0
";
    /// The host's `/proc/net/tcp` with listeners on 0.0.0.0:47005 (one connection accepted),
    /// 127.0.0.2:47004, and established and `TIME_WAIT` sockets.
    const HOST_TCP: &str = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode                                                     
   0: 00000000:B79D 00000000:0000 0A 00000000:00000001 00:00000000 00000000     0        0 458432 2 00000000c43659a0 100 0 0 10 0                    
   1: 0200007F:B79C 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 458431 1 000000007e6d41af 100 0 0 10 0                    
   5: 0100007F:81E1 0100007F:CDFE 06 00000000:00000000 03:00001572 00000000     0        0 0 3 00000000401390ab                                      
  50: 0100007F:B79D 0100007F:EBFE 01 00000000:00000000 00:00000000 00000000     0        0 0 1 00000000c185f3f8 20 0 0 10 -1                         
 619: 0100007F:B0CF 0100007F:AA9C 05 00000000:00000000 02:0000464A 00000000     0        0 0 4 00000000af159563 20 4 29 14 -1                        
";
    /// The host's `/proc/net/tcp6` with listeners on [::]:47002, [::1]:47001 and the v4-mapped
    /// [::ffff:127.0.0.1]:47003.
    const HOST_TCP6: &str = "  sl  local_address                         remote_address                        st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 00000000000000000000000000000000:B79A 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 458429 1 000000006f8426ee 100 0 0 10 0
   1: 00000000000000000000000001000000:B799 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 458428 1 0000000087636f73 100 0 0 10 0
   2: 0000000000000000FFFF00000100007F:B79B 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 458430 1 00000000b4845749 100 0 0 10 0
";
    /// `/proc/<pid>/stat` of a container's `sleep`.
    const STAT: &str = "3551 (sleep) S 3530 3551 3551 0 -1 4194560 1010 151 24 2 0 1 0 0 20 0 1 0 726632 2322432 268 18446744073709551615 4198400 5785993 140721634214192 0 0 0 0 4 0 1 0 0 17 0 0 0 0 0 0 6141704 6178576 311836672 140721634217883 140721634217893 140721634217893 140721634217961 0\n";

    fn l(addr: &str, port: u16) -> Listener {
        Listener {
            addr: addr.parse().unwrap(),
            port,
        }
    }

    #[test]
    fn reads_loopback_and_wildcard_listeners_of_a_container() {
        assert_eq!(
            parse_tcp_table(CONTAINER_TCP).unwrap(),
            [l("127.0.0.1", 3000)]
        );
        assert_eq!(parse_tcp_table(CONTAINER_TCP6).unwrap(), [l("::", 3002)]);
        // `cat /proc/net/tcp /proc/net/tcp6` prints both tables one after the other.
        let both = parse_tcp_table(&format!("{CONTAINER_TCP}{CONTAINER_TCP6}")).unwrap();
        assert_eq!(both, [l("127.0.0.1", 3000), l("::", 3002)]);
    }

    #[test]
    fn only_listening_sockets_count_and_v6_words_are_little_endian() {
        assert_eq!(
            parse_tcp_table(HOST_TCP).unwrap(),
            [l("0.0.0.0", 47005), l("127.0.0.2", 47004)]
        );
        let v6 = parse_tcp_table(HOST_TCP6).unwrap();
        assert_eq!(
            v6,
            [
                l("::", 47002),
                l("::1", 47001),
                l("::ffff:127.0.0.1", 47003)
            ]
        );
        assert!(!v6[0].is_loopback());
        assert!(v6[1].is_loopback(), "::1");
        assert!(v6[2].is_loopback(), "v4-mapped 127.0.0.1");
        assert_eq!(v6[1].to_string(), "[::1]:47001");
        assert!(l("127.0.0.2", 1).is_loopback());
        assert!(!l("172.17.0.2", 1).is_loopback());
    }

    #[test]
    fn text_that_is_no_socket_table_is_an_error() {
        assert!(parse_tcp_table("").is_err());
        let e = parse_tcp_table("cat: can't open '/proc/net/tcp6': No such file or directory")
            .unwrap_err();
        assert!(e.contains("not a socket table line"), "{e}");
        // A kernel without IPv6 has no tcp6: the v4 table alone is fine.
        assert!(parse_tcp_table(CONTAINER_TCP).is_ok());
        assert!(parse_tcp_table("  sl  local_address\n   0: 0100007F 00000000:0000 0A\n").is_err());
    }

    #[test]
    fn process_state_from_stat_even_with_parentheses_in_the_name() {
        let p = parse_stat(STAT, 100).unwrap();
        assert_eq!(
            p,
            ProcessState {
                pid: 3551,
                name: "sleep".into(),
                state: 'S',
                threads: 1,
                cpu: Duration::from_millis(10),
            }
        );
        assert_eq!(
            p.to_string(),
            "`sleep` (pid 3551 on this host) is sleeping (S), 1 thread, 0.01s of CPU"
        );
        let odd = STAT.replace("(sleep)", "(a (b) c)");
        assert_eq!(parse_stat(&odd, 100).unwrap().name, "a (b) c");
        assert!(parse_stat("garbage", 100).is_none());
    }

    #[test]
    fn loopback_on_the_expected_port_is_conclusive_with_the_fix() {
        let d = diagnose(3000, &[3000], &parse_tcp_table(CONTAINER_TCP).unwrap());
        assert_eq!(d, Diagnosis::Loopback(vec![l("127.0.0.1", 3000)]));
        assert!(d.is_conclusive());
        let text = explain(&d, 3000);
        assert!(
            text.contains("binds loopback inside the container"),
            "{text}"
        );
        assert!(text.contains("127.0.0.1:3000"), "{text}");
        assert!(text.ends_with("bind 0.0.0.0:3000 (or [::]:3000)"), "{text}");

        let d = diagnose(47001, &[47001], &parse_tcp_table(HOST_TCP6).unwrap());
        assert!(explain(&d, 47001).contains("[::1]:47001 only"), "{d:?}");
        let d = diagnose(47003, &[47003], &parse_tcp_table(HOST_TCP6).unwrap());
        assert!(d.is_conclusive(), "v4-mapped loopback: {d:?}");
    }

    #[test]
    fn a_wildcard_listener_is_reachable() {
        let d = diagnose(3002, &[3002], &parse_tcp_table(CONTAINER_TCP6).unwrap());
        assert_eq!(d, Diagnosis::Reachable(l("::", 3002)));
        assert!(!d.is_conclusive());
        // The container's own address is reachable too.
        let d = diagnose(
            8080,
            &[8080],
            &[l("172.17.0.2", 8080), l("127.0.0.1", 8080)],
        );
        assert_eq!(d, Diagnosis::Reachable(l("172.17.0.2", 8080)));
    }

    #[test]
    fn another_port_names_it_and_the_manifest_keys() {
        let d = diagnose(8080, &[8080], &[l("0.0.0.0", 8081)]);
        assert!(d.is_conclusive());
        let text = explain(&d, 8080);
        assert!(text.contains("nothing listens on port 8080"), "{text}");
        assert!(text.contains("0.0.0.0:8081"), "{text}");
        assert!(text.contains("`expose = [8081]`"), "{text}");
        assert!(text.contains("test.ready"), "{text}");
        assert!(!text.contains("loopback"), "{text}");
        // Another port on loopback: both fixes.
        let text = explain(&diagnose(8080, &[8080], &[l("127.0.0.1", 3000)]), 8080);
        assert!(text.contains("`expose = [3000]`"), "{text}");
        assert!(text.contains("bind 0.0.0.0:3000"), "{text}");
    }

    #[test]
    fn declared_ports_and_dockers_dns_are_not_another_port() {
        // A metrics port the manifest exposes too: the main port may just not listen yet.
        let d = diagnose(8080, &[8080, 9090], &[l("0.0.0.0", 9090)]);
        assert_eq!(d, Diagnosis::NotListening(vec![l("0.0.0.0", 9090)]));
        assert!(!d.is_conclusive());
        assert!(explain(&d, 8080).contains("it listens on 0.0.0.0:9090"));
        // Docker's embedded DNS server on user-defined networks.
        let d = diagnose(8080, &[8080], &[l("127.0.0.11", 41234)]);
        assert_eq!(d, Diagnosis::NotListening(vec![]));
        assert_eq!(
            explain(&d, 8080),
            "nothing listens on any TCP port in the container (expected port 8080)"
        );
    }

    #[test]
    fn a_loopback_address_in_the_log_is_named() {
        let logs = "starting\nlistening on 127.0.0.1:3000\nready\n";
        let hint = loopback_in_log(logs).unwrap();
        assert_eq!(hint.addr, "127.0.0.1:3000");
        assert_eq!(hint.port, 3000);
        assert_eq!(hint.line, "listening on 127.0.0.1:3000");
        assert!(
            hint.explain(logs)
                .contains("bind 0.0.0.0:3000 (or [::]:3000)")
        );
        // tracing's coloured output, as a container without a terminal still gets it.
        let tracing = "\x1b[2m2024-01-02T03:04:05Z\x1b[0m \x1b[32m INFO\x1b[0m server: listening addr=127.0.0.1:6379\n";
        let hint = loopback_in_log(tracing).unwrap();
        assert_eq!(hint.addr, "127.0.0.1:6379");
        assert!(!hint.line.contains('\x1b'), "{:?}", hint.line);
        let v6 = "thread 'main' panicked: bind [::1]:8080: Cannot assign requested address (os error 99)";
        let hint = loopback_in_log(v6).unwrap();
        assert_eq!(hint.addr, "[::1]:8080");
        assert!(hint.explain(v6).contains("no IPv6 loopback"), "{hint:?}");
        assert_eq!(
            loopback_in_log("http://localhost:8080/health ok")
                .unwrap()
                .addr,
            "localhost:8080"
        );
        assert!(loopback_in_log("listening on 0.0.0.0:3000\n127.0.0.1 is home").is_none());
    }
}
