//! The safe crate against a real shoald: pub/sub and request/response within
//! a thread, across threads and across processes (this test binary re-runs
//! itself as the server), errors, and release on Drop.
mod common;

use common::{eventually, Daemon};
use shoal::{ErrorCode, Runtime};
use std::process::Command;
use std::time::{Duration, Instant};

const SECOND: Duration = Duration::from_secs(1);

#[repr(C)]
#[derive(Copy, Clone, Debug, PartialEq)]
struct Point {
    x: f64,
    y: f64,
    id: u32,
    _pad: u32,
}
// SAFETY: repr(C), plain numbers, explicit padding.
unsafe impl shoal::Pod for Point {}

fn in_use(rt: &Runtime) -> u64 {
    rt.chunks_in_use().expect("pool info")
}

#[test]
fn errors_carry_code_and_detail() {
    // No daemon on the domain.
    let dir = std::env::temp_dir().join(format!("shoal-rusttest-none-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let domain = format!("rusttest-nobody-{}", std::process::id());
    let opts = shoal::RuntimeOptions {
        domain: Some(domain.clone()),
        runtime_dir: Some(dir.clone()),
        connect_timeout: None,
    };
    let err = Runtime::with_options("rust-test", &opts).unwrap_err();
    assert_eq!(err.code(), ErrorCode::DaemonUnavailable);
    assert!(err.message().contains(&domain), "{err}");
    assert!(err.to_string().contains(err.message()));
    let _ = std::fs::remove_dir(&dir);

    let d = Daemon::start();
    let rt = d.runtime("rust-test");
    assert_eq!(rt.domain(), d.domain);
    let info = rt.domain_info().unwrap();
    assert_eq!(info.domain, d.domain);
    assert!(info.servers >= 512 && info.processes > 0);
    assert!(rt
        .processes()
        .unwrap()
        .iter()
        .any(|p| p.pid == std::process::id() as i32 && p.name == "rust-test"));
    let publisher = rt.publisher("rusttest/errors").unwrap();
    let client = rt.client("rusttest/errors-service").unwrap();

    assert_eq!(publisher.loan(0).unwrap_err().code(), ErrorCode::InvalidArgument);
    assert_eq!(publisher.loan(1 << 40).unwrap_err().code(), ErrorCode::ChunkTooLarge);
    assert_eq!(rt.publisher("bad\0topic").unwrap_err().code(), ErrorCode::InvalidArgument);
    assert_eq!(rt.publisher(&"x".repeat(200)).unwrap_err().code(), ErrorCode::InvalidArgument);

    // No server: the call fails with a code and the request is consumed.
    assert_eq!(client.server_count(), 0);
    let err = client.call_copy(b"ping", Duration::from_millis(100)).unwrap_err();
    assert_eq!(err.code(), ErrorCode::NoServer, "{err}");
    assert_eq!(in_use(&rt), 0);

    // A request loan sent by another client: wrong_port, consumed either way.
    let other = rt.client("rusttest/other-service").unwrap();
    let loan = other.loan(8).unwrap();
    assert_eq!(in_use(&rt), 1);
    assert_eq!(client.send(loan).unwrap_err().code(), ErrorCode::WrongPort);
    assert_eq!(in_use(&rt), 0);

    let mut loan = publisher.loan(8).unwrap();
    assert_eq!(loan.value_mut::<Point>().unwrap_err().code(), ErrorCode::InvalidArgument);
    assert_eq!(loan.write(&[0u8; 100]).unwrap_err().code(), ErrorCode::InvalidArgument);
    loan.release().unwrap();
    assert_eq!(in_use(&rt), 0);
}

#[test]
fn pubsub_in_one_thread() {
    let d = Daemon::start();
    let rt = d.runtime("rust-test");
    let sub = rt.subscriber("rusttest/points").unwrap();
    let publisher = rt.publisher("rusttest/points").unwrap();
    assert!(eventually(|| publisher.subscriber_count() == 1));

    assert!(sub.try_take().unwrap().is_none());
    let t0 = Instant::now();
    assert!(sub.take(Duration::from_millis(50)).unwrap().is_none());
    assert!(t0.elapsed() >= Duration::from_millis(40));

    let mut loan = publisher.loan(std::mem::size_of::<Point>()).unwrap();
    loan.write_value(Point { x: 1.5, y: -2.0, id: 7, _pad: 0 }).unwrap();
    loan.publish().unwrap();
    {
        let s = sub.take(SECOND).unwrap().expect("a sample");
        assert_eq!(s.len(), std::mem::size_of::<Point>());
        assert_eq!(*s.value::<Point>().unwrap(), Point { x: 1.5, y: -2.0, id: 7, _pad: 0 });
    }

    let mut loan = publisher.loan(64).unwrap();
    loan.write(b"hello, shoal").unwrap();
    publisher.publish(loan).unwrap();
    publisher.publish_copy(b"second").unwrap();
    let a = sub.take(SECOND).unwrap().unwrap();
    let b = sub.take(SECOND).unwrap().unwrap();
    assert_eq!(&a[..], b"hello, shoal");
    assert_eq!(&*b, b"second");
    assert!(b.sequence_id() > a.sequence_id());

    // Zero copy of a large payload, byte for byte.
    let big: Vec<u8> = (0..60_000u32).map(|i| (i * 31) as u8).collect();
    publisher.publish_copy(&big).unwrap();
    let c = sub.take(SECOND).unwrap().unwrap();
    assert_eq!(&c[..], &big[..]);
    assert_eq!(in_use(&rt), 3);
    drop((a, b, c));
    assert_eq!(in_use(&rt), 0);

    // One chunk, two subscribers: freed when both released it.
    let sub2 = rt.subscriber("rusttest/points").unwrap();
    assert!(eventually(|| publisher.subscriber_count() == 2));
    publisher.publish_copy(b"shared").unwrap();
    let s1 = sub.take(SECOND).unwrap().unwrap();
    let s2 = sub2.take(SECOND).unwrap().unwrap();
    assert_eq!((&s1[..], &s2[..]), (&b"shared"[..], &b"shared"[..]));
    assert_eq!(in_use(&rt), 1);
    drop(s1);
    assert_eq!(in_use(&rt), 1);
    drop(s2);
    assert_eq!(in_use(&rt), 0);
}

#[test]
fn ignore_own_process() {
    let d = Daemon::start();
    let rt = d.runtime("rust-own");
    let deaf = rt
        .subscriber_with("rusttest/own", &shoal::SubscriberOptions { ignore_own_process: true, ..Default::default() })
        .unwrap();
    let plain = rt.subscriber("rusttest/own").unwrap();
    let publisher = rt.publisher("rusttest/own").unwrap();
    publisher.publish_copy(b"mine").unwrap();
    assert!(plain.take(SECOND).unwrap().is_some());
    assert!(deaf.take(Duration::from_millis(50)).unwrap().is_none());

    let _server = rt.server("rusttest/own-svc").unwrap();
    let deaf_client = rt
        .client_with("rusttest/own-svc", &shoal::ClientOptions { ignore_own_process: true, ..Default::default() })
        .unwrap();
    let plain_client = rt.client("rusttest/own-svc").unwrap();
    assert_eq!(plain_client.server_count(), 1);
    assert_eq!(deaf_client.server_count(), 0);
    let err = deaf_client.call_copy(b"x", SECOND).unwrap_err();
    assert_eq!(err.code(), ErrorCode::NoServer);
}

#[test]
fn guards_release_on_drop() {
    let d = Daemon::start();
    let rt = d.runtime("rust-test");
    let publisher = rt.publisher("rusttest/drop").unwrap();
    let sub = rt.subscriber("rusttest/drop").unwrap();
    assert!(eventually(|| publisher.subscriber_count() == 1));

    {
        let _loan = publisher.loan(100).unwrap();
        assert_eq!(in_use(&rt), 1);
    }
    assert_eq!(in_use(&rt), 0);

    let loans: Vec<_> = (0..6).map(|_| publisher.loan(8).unwrap()).collect();
    assert_eq!(in_use(&rt), 6);
    drop(loans);
    assert_eq!(in_use(&rt), 0);

    for _ in 0..4 {
        publisher.publish_copy(b"x").unwrap();
    }
    let mut samples = Vec::new();
    while let Some(s) = sub.take(Duration::from_millis(200)).unwrap() {
        samples.push(s);
    }
    assert_eq!(samples.len(), 4);
    assert_eq!(in_use(&rt), 4);
    samples.remove(0);
    assert_eq!(in_use(&rt), 3);
    let kept = samples.pop().unwrap();
    samples.clear();
    assert_eq!(in_use(&rt), 1);
    assert_eq!(&kept[..], b"x");
    kept.release().unwrap();
    assert_eq!(in_use(&rt), 0);

    // Ports hold the runtime: dropping every Runtime handle keeps them alive.
    let rt_b = d.runtime("rust-test-b");
    let sub_b = rt_b.subscriber("rusttest/drop").unwrap();
    drop(rt_b);
    assert!(eventually(|| publisher.subscriber_count() == 2));
    publisher.publish_copy(b"still here").unwrap();
    assert_eq!(&sub_b.take(SECOND).unwrap().unwrap()[..], b"still here");
    assert_eq!(&sub.take(SECOND).unwrap().unwrap()[..], b"still here");
    drop(sub_b);
    assert!(eventually(|| publisher.subscriber_count() == 1));
    assert_eq!(in_use(&rt), 0);
    assert!(rt
        .ports()
        .unwrap()
        .iter()
        .any(|p| p.service == "rusttest/drop" && p.kind == shoal::PortKind::Publisher));
}

#[test]
fn pubsub_across_threads() {
    let d = Daemon::start();
    let rt = d.runtime("rust-test");
    let sub = rt.subscriber("rusttest/stream").unwrap();
    let rt2 = rt.clone();
    let producer = std::thread::spawn(move || {
        let publisher = rt2.publisher("rusttest/stream").unwrap();
        assert!(eventually(|| publisher.subscriber_count() == 1));
        for i in 0u64..200 {
            let mut loan = publisher.loan(8).unwrap();
            loan.write_value(i).unwrap();
            loan.publish().unwrap();
        }
    });
    let mut next = 0u64;
    while next < 200 {
        let s = sub.take(Duration::from_secs(5)).unwrap().expect("sample within 5 s");
        assert_eq!(*s.value::<u64>().unwrap(), next);
        next += 1;
    }
    producer.join().unwrap();
    assert_eq!(in_use(&rt), 0);
}

#[test]
fn request_response_across_threads() {
    let d = Daemon::start();
    let rt = d.runtime("rust-test");
    let server = rt.server("rusttest/threads").unwrap();
    let client = rt.client("rusttest/threads").unwrap();
    assert!(eventually(|| client.server_count() == 1));

    let worker = std::thread::spawn(move || {
        for _ in 0..100 {
            let req = server.take(Duration::from_secs(5)).unwrap().expect("request");
            let mut resp = server.loan_response(&req, 8).unwrap();
            resp.write_value(req.value::<u64>().unwrap() + 1).unwrap();
            resp.send().unwrap();
        }
        server // hand the port back
    });
    for i in 0u64..100 {
        let mut req = client.loan(8).unwrap();
        req.write_value(i).unwrap();
        let resp = req.call(Duration::from_secs(5)).unwrap().expect("response");
        assert_eq!(*resp.value::<u64>().unwrap(), i + 1);
    }
    let server = worker.join().unwrap();
    assert_eq!(in_use(&rt), 0);

    // A server answering a client that has gone: ClientGone.
    let gone = rt.client("rusttest/threads").unwrap();
    let mut req = gone.loan(8).unwrap();
    req.write_value(1u64).unwrap();
    req.send().unwrap();
    let taken = server.take(SECOND).unwrap().expect("request");
    drop(gone);
    assert_eq!(server.loan_response(&taken, 8).unwrap_err().code(), ErrorCode::ClientGone);
    drop(taken);
    assert_eq!(in_use(&rt), 0);
}

/// Server role for `request_response_across_processes`: runs only when the
/// parent test starts this binary with SHOAL_TEST_CHILD_SERVER set.
#[test]
fn child_server() {
    let Ok(spec) = std::env::var("SHOAL_TEST_CHILD_SERVER") else { return };
    let mut parts = spec.splitn(3, '|');
    let (domain, dir, count) = (parts.next().unwrap(), parts.next().unwrap(), parts.next().unwrap());
    let opts = shoal::RuntimeOptions {
        domain: Some(domain.into()),
        runtime_dir: Some(dir.into()),
        connect_timeout: Some(Duration::from_secs(5)),
    };
    let rt = Runtime::with_options("rust-test-server", &opts).unwrap();
    let server = rt.server("rusttest/service").unwrap();
    for _ in 0..count.parse::<usize>().unwrap() {
        let req = server.take(Duration::from_secs(10)).unwrap().expect("request within 10 s");
        if req.len() == 8 {
            let mut resp = server.loan_response(&req, 8).unwrap();
            resp.write_value(req.value::<u64>().unwrap() * 2 + 1).unwrap();
            server.send(resp).unwrap();
        } else {
            server.respond_copy(&req, &req.to_ascii_uppercase()).unwrap();
        }
    }
}

#[test]
fn request_response_across_processes() {
    let mut d = Daemon::start();
    let (numbers, texts, sends) = (50u64, 3, 5u64);
    let total = numbers + texts + sends;
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args(["child_server", "--exact", "--nocapture", "--test-threads", "1"])
        .env("SHOAL_TEST_CHILD_SERVER", format!("{}|{}|{}", d.domain, d.dir.display(), total))
        .spawn()
        .unwrap();

    let rt = d.runtime("rust-test-client");
    let client = rt.client("rusttest/service").unwrap();
    assert!(eventually(|| client.server_count() == 1), "server process never appeared");

    for i in 0..numbers {
        let mut req = client.loan(8).unwrap();
        *req.value_mut::<u64>().unwrap() = i;
        let resp = client.call(req, Duration::from_secs(5)).unwrap().expect("response");
        assert_eq!(*resp.value::<u64>().unwrap(), 2 * i + 1);
    }
    for word in ["zero", "copy", "ipc"] {
        let resp = client.call_copy(word.as_bytes(), Duration::from_secs(5)).unwrap().unwrap();
        assert_eq!(&resp[..], word.to_uppercase().as_bytes());
    }
    // send() + take(): responses carry their request's sequence id.
    let mut seqs = Vec::new();
    for i in 0..sends {
        let mut req = client.loan(8).unwrap();
        req.write_value(1000 + i).unwrap();
        seqs.push(req.send().unwrap());
    }
    for (i, seq) in seqs.iter().enumerate() {
        let resp = client.take(Duration::from_secs(5)).unwrap().expect("response");
        assert_eq!(resp.sequence_id(), *seq);
        assert_eq!(*resp.value::<u64>().unwrap(), 2 * (1000 + i as u64) + 1);
    }
    assert!(client.try_take().unwrap().is_none());

    let status = child.wait().unwrap();
    assert!(status.success(), "server process: {status}");
    assert!(eventually(|| client.server_count() == 0));
    assert!(eventually(|| in_use(&rt) == 0));
    drop(client);
    drop(rt);
    assert_eq!(d.stop(), Some(0), "shoald exits 0 on SIGTERM");
}

#[test]
fn waitset_reports_ready_ports() {
    let d = Daemon::start();
    let rt = d.runtime("rust-test");
    let publisher = rt.publisher("rusttest/ws").unwrap();
    let sub = rt.subscriber("rusttest/ws").unwrap();
    let server = rt.server("rusttest/ws-service").unwrap();
    let client = rt.client("rusttest/ws-service").unwrap();
    assert!(eventually(|| publisher.subscriber_count() == 1 && client.server_count() == 1));

    let mut ws = rt.waitset().unwrap();
    ws.attach_subscriber(&sub, 1).unwrap();
    ws.attach_server(&server, 2).unwrap();
    assert!(ws.wait(Duration::from_millis(20)).unwrap().is_empty());
    assert!(ws.fd().unwrap() >= 0);

    publisher.publish_copy(b"a").unwrap();
    assert_eq!(ws.wait(SECOND).unwrap(), vec![1]);
    assert!(sub.try_take().unwrap().is_some());

    client.send(client.loan(4).unwrap()).unwrap();
    assert_eq!(ws.wait(SECOND).unwrap(), vec![2]);
    assert!(server.take(SECOND).unwrap().is_some());

    ws.detach(1).unwrap();
    publisher.publish_copy(b"b").unwrap();
    assert!(ws.wait(Duration::from_millis(50)).unwrap().is_empty());
    drop(ws);
    assert!(sub.take(SECOND).unwrap().is_some());
    assert_eq!(in_use(&rt), 0);
}

/// Rust client, C++ server (examples/cpp/request_response.cpp), one daemon.
/// Runs when $SHOAL_CPP_EXAMPLE names that program (ctest sets it).
#[test]
fn interop_with_cpp_server() {
    let Some(program) = std::env::var_os("SHOAL_CPP_EXAMPLE") else {
        eprintln!("interop_with_cpp_server: SHOAL_CPP_EXAMPLE not set, skipped");
        return;
    };
    #[repr(C)]
    #[derive(Copy, Clone)]
    struct AddRequest {
        a: i64,
        b: i64,
    }
    // SAFETY: repr(C), two i64.
    unsafe impl shoal::Pod for AddRequest {}

    let d = Daemon::start();
    let mut server = Command::new(program)
        .arg("server")
        .env("SHOAL_DOMAIN", &d.domain)
        .env("SHOAL_RUNTIME_DIR", &d.dir)
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let rt = d.runtime("rust-interop");
    let client = rt.client("example/add").unwrap();
    assert!(eventually(|| client.server_count() == 1), "C++ server never appeared");
    for i in 0..20i64 {
        let mut req = client.loan(std::mem::size_of::<AddRequest>()).unwrap();
        req.write_value(AddRequest { a: i, b: 1000 }).unwrap();
        let resp = req.call(Duration::from_secs(5)).unwrap().expect("response from C++");
        assert_eq!(*resp.value::<i64>().unwrap(), i + 1000);
    }
    common::terminate(&server);
    assert!(server.wait().unwrap().success(), "C++ server exits 0 on SIGTERM");
    assert!(eventually(|| in_use(&rt) == 0));
}
