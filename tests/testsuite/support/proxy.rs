//! A TCP-to-unix-socket proxy in front of the Docker engine, which a test can cut (every
//! connection closed, the port refused) or freeze (connections stay open and nothing more is
//! forwarded: an engine that stops answering). The tool reaches the engine through it with
//! `DOCKER_HOST=tcp://ADDR`.

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::os::unix::net::UnixStream;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

const RUNNING: u8 = 0;
const FROZEN: u8 = 1;
const CUT: u8 = 2;

/// The engine's socket, from `DOCKER_HOST` when it names one.
fn engine_socket() -> String {
    std::env::var("DOCKER_HOST")
        .ok()
        .and_then(|h| h.strip_prefix("unix://").map(str::to_owned))
        .unwrap_or_else(|| "/var/run/docker.sock".to_owned())
}

struct State {
    mode: AtomicU8,
    /// Connections accepted so far.
    accepted: std::sync::atomic::AtomicUsize,
    /// Both ends of every connection, to close them when cut.
    sockets: Mutex<Vec<Socket>>,
}

enum Socket {
    Tcp(TcpStream),
    Unix(UnixStream),
}

/// A running proxy; cut when dropped.
pub struct EngineProxy {
    addr: SocketAddr,
    state: Arc<State>,
}

impl EngineProxy {
    /// A proxy on a free loopback port.
    pub fn start() -> EngineProxy {
        EngineProxy::start_on("127.0.0.1:0")
    }

    /// A proxy listening on `bind` (`IP:0` for a free port).
    pub fn start_on(bind: &str) -> EngineProxy {
        let listener = TcpListener::bind(bind).unwrap_or_else(|e| panic!("bind {bind}: {e}"));
        listener.set_nonblocking(true).unwrap();
        let addr = listener.local_addr().unwrap();
        let state = Arc::new(State {
            mode: AtomicU8::new(RUNNING),
            accepted: Default::default(),
            sockets: Mutex::new(Vec::new()),
        });
        let socket = engine_socket();
        let s = state.clone();
        std::thread::spawn(move || {
            loop {
                if s.mode.load(Ordering::SeqCst) == CUT {
                    return; // drops the listener: the port refuses connections from now on
                }
                match listener.accept() {
                    Ok((client, _)) => {
                        s.accepted.fetch_add(1, Ordering::SeqCst);
                        client.set_nonblocking(false).unwrap();
                        accept(&s, client, &socket);
                    }
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                        std::thread::sleep(Duration::from_millis(5));
                    }
                    Err(_) => return,
                }
            }
        });
        EngineProxy { addr, state }
    }

    /// `tcp://ADDR`, for `DOCKER_HOST`.
    pub fn docker_host(&self) -> String {
        format!("tcp://{}", self.addr)
    }

    /// How many connections the proxy has accepted.
    pub fn connections(&self) -> usize {
        self.state.accepted.load(Ordering::SeqCst)
    }

    /// Closes every connection and stops listening: the engine is gone.
    pub fn cut(&self) {
        self.state.mode.store(CUT, Ordering::SeqCst);
        for socket in self.state.sockets.lock().unwrap().drain(..) {
            match socket {
                Socket::Tcp(s) => {
                    let _ = s.shutdown(Shutdown::Both);
                }
                Socket::Unix(s) => {
                    let _ = s.shutdown(Shutdown::Both);
                }
            }
        }
    }

    /// Forwards nothing more, in either direction, and answers no new connection: the engine
    /// stops answering while its connections stay open.
    pub fn freeze(&self) {
        let _ =
            self.state
                .mode
                .compare_exchange(RUNNING, FROZEN, Ordering::SeqCst, Ordering::SeqCst);
    }
}

impl Drop for EngineProxy {
    fn drop(&mut self) {
        self.cut();
    }
}

fn accept(state: &Arc<State>, client: TcpStream, socket: &str) {
    let mut sockets = state.sockets.lock().unwrap();
    sockets.push(Socket::Tcp(client.try_clone().unwrap()));
    if state.mode.load(Ordering::SeqCst) != RUNNING {
        // Frozen: keep the connection open, never answer.
        sockets.push(Socket::Tcp(client));
        return;
    }
    let engine = match UnixStream::connect(socket) {
        Ok(e) => e,
        Err(_) => return,
    };
    sockets.push(Socket::Unix(engine.try_clone().unwrap()));
    drop(sockets);
    let (c2, e2) = (client.try_clone().unwrap(), engine.try_clone().unwrap());
    let s = state.clone();
    std::thread::spawn(move || pump(&s, client, engine));
    let s = state.clone();
    std::thread::spawn(move || pump(&s, e2, c2));
}

/// A stream whose writing half can be closed.
trait Half: Read + Write {
    fn close_write(&self);
}

impl Half for TcpStream {
    fn close_write(&self) {
        let _ = self.shutdown(Shutdown::Write);
    }
}

impl Half for UnixStream {
    fn close_write(&self) {
        let _ = self.shutdown(Shutdown::Write);
    }
}

/// Copies `from` to `to` until either closes or the proxy is cut; holds the data while frozen.
fn pump(state: &State, mut from: impl Half, mut to: impl Half) {
    let mut buf = [0u8; 64 * 1024];
    loop {
        let n = match from.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        loop {
            match state.mode.load(Ordering::SeqCst) {
                RUNNING => break,
                FROZEN => std::thread::sleep(Duration::from_millis(20)),
                _ => return,
            }
        }
        if to.write_all(&buf[..n]).is_err() {
            break;
        }
    }
    to.close_write();
}
