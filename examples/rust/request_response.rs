//! Request/response with the safe Rust crate.
//!
//!   shoald &
//!   cargo run --example request_response -- server &   # answers example/add
//!   cargo run --example request_response -- client     # three requests
//!   cargo run --example request_response               # both, two threads
//!
//! (run from bindings/rust; requests and responses are written in place in
//! shared memory, and every guard releases its chunk when it is dropped.)
use std::time::Duration;

#[repr(C)]
#[derive(Copy, Clone)]
struct AddRequest {
    a: i64,
    b: i64,
}
// SAFETY: repr(C), two i64, no padding.
unsafe impl shoal::Pod for AddRequest {}

fn serve(rt: &shoal::Runtime, max_requests: Option<usize>) -> shoal::Result<()> {
    let server = rt.server("example/add")?;
    println!("server: offering example/add");
    let mut served = 0;
    while max_requests.map_or(true, |max| served < max) {
        // Never wait forever: come back every 200 ms.
        let Some(req) = server.take(Duration::from_millis(200))? else {
            continue;
        };
        let AddRequest { a, b } = *req.value::<AddRequest>()?;
        let mut resp = server.loan_response(&req, 8)?;
        resp.write_value(a + b)?;
        resp.send()?;
        served += 1;
    } // each request is released at the end of its iteration
    Ok(())
}

fn call(rt: &shoal::Runtime) -> shoal::Result<()> {
    let client = rt.client("example/add")?;
    for _ in 0..100 {
        if client.server_count() > 0 {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    for i in 1..=3i64 {
        let mut req = client.loan(std::mem::size_of::<AddRequest>())?;
        req.write_value(AddRequest { a: i, b: 10 * i })?;
        match req.call(Duration::from_secs(2))? {
            Some(resp) => println!("client: {} + {} = {}", i, 10 * i, resp.value::<i64>()?),
            None => eprintln!("client: no response within 2 s"),
        }
    }
    Ok(())
}

fn main() {
    let mode = std::env::args().nth(1).unwrap_or_else(|| "both".into());
    let options = shoal::RuntimeOptions {
        connect_timeout: Some(Duration::from_secs(2)),
        ..Default::default()
    };
    let result = shoal::Runtime::with_options(&format!("request_response_{mode}"), &options)
        .and_then(|rt| match mode.as_str() {
            "server" => serve(&rt, None),
            "client" => call(&rt),
            _ => {
                let rt2 = rt.clone();
                let server = std::thread::spawn(move || serve(&rt2, Some(3)));
                call(&rt)?;
                server.join().expect("server thread")
            }
        });
    if let Err(e) = result {
        // e.g. "SHOAL_ERR_DAEMON_UNAVAILABLE: ... start shoald --domain default"
        eprintln!("request_response: {e}");
        std::process::exit(1);
    }
}
