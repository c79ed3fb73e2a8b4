//! Alerts end to end: a real agent ships lines to a real collector whose `[[alert]]`
//! rules deliver to webhook receivers started here on 127.0.0.1.

use garonne_tests::webhook::Receiver;
use garonne_tests::*;
use serde_json::Value;
use std::net::TcpListener;
use std::path::Path;

fn access_lines(status: u16, count: usize) -> String {
    (0..count)
        .map(|i| {
            format!(
                "10.0.0.{i} - - [04/Dec/2026:10:00:00 +0000] \"GET /page/{i} HTTP/1.1\" {status} 512 \"-\" \"curl\"\n"
            )
        })
        .collect()
}

fn inputs(logs: &Path) -> String {
    format!(
        "[[input]]\npaths = [\"{0}/access.log\"]\nmodule = \"apache.access\"\n\n\
         [[input]]\npaths = [\"{0}/syslog\"]\nmodule = \"syslog\"\n",
        logs.display()
    )
}

fn webhook(name: &str, url: &str, extra: &str) -> String {
    format!("[[notify]]\nname = \"{name}\"\ntype = \"webhook\"\nurl = \"{url}\"\n{extra}\n")
}

fn action(message: &Value) -> &str {
    let title = message["title"].as_str().unwrap_or_default();
    if message["severity"] == "resolved" {
        "resolve"
    } else if title.contains("still firing") {
        "remind"
    } else {
        "fire"
    }
}

#[test]
fn a_burst_of_5xx_fires_once_reminds_resolves_and_a_dead_channel_blocks_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let certs = Certs::create(dir.path()).unwrap();
    let logs = dir.path().join("logs");
    std::fs::create_dir_all(&logs).unwrap();
    append(&logs.join("access.log"), access_lines(200, 10).as_bytes());

    let hook = Receiver::start();
    // Nothing listens here until the end of the test: every attempt fails at first. The
    // port stays bound (not listening, so connections are refused) so that nothing else
    // can take it before the channel comes back.
    let down_socket =
        socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    down_socket
        .bind(&std::net::SocketAddr::from(([127, 0, 0, 1], 0)).into())
        .unwrap();
    let down_port = down_socket
        .local_addr()
        .unwrap()
        .as_socket()
        .unwrap()
        .port();
    let down_url = format!("http://127.0.0.1:{down_port}/alerts");
    let config = format!(
        "{}{}\
         [[alert]]\nname = \"web-5xx\"\nkind = \"threshold\"\n\
         condition = \"http.response.status_code == 5xx\"\ncount = 5\nwindow = \"30s\"\n\
         group_by = \"agent.id\"\ngroup_window = \"2s\"\nreminder = \"5s\"\n\
         resolve_after = \"9s\"\nnotify = [\"down\", \"hook\"]\n",
        webhook(
            "down",
            &down_url,
            "retries = 20\nretry_delay = \"200ms\"\ntimeout = \"1s\""
        ),
        webhook("hook", &hook.url(), ""),
    );
    let collector = Collector::start(dir.path(), &certs, &config).unwrap();
    let agent_config = agent_config(dir.path(), &certs, collector.port, &inputs(&logs), "");
    let _agent = start_agent(dir.path(), &agent_config).unwrap();
    wait_until(READY_TIMEOUT, "the first 10 lines", || {
        collector.count("*") == 10
    });

    // The burst, mixed with normal traffic.
    append(&logs.join("access.log"), access_lines(503, 20).as_bytes());
    append(&logs.join("access.log"), access_lines(200, 5).as_bytes());
    let messages = hook.wait_for("the fire message", |m| !m.is_empty());
    assert_eq!(messages.len(), 1, "{messages:#?}");
    let fired = &messages[0];
    assert_eq!(action(fired), "fire");
    assert_eq!(fired["severity"], "warning");
    assert_eq!(fired["key"], "alert:web-5xx:web1");
    assert_eq!(
        fired["fields"]["count"], "20",
        "one grouped message: {fired:#}"
    );
    let body = fired["body"].as_str().unwrap();
    assert!(body.contains("How often: 20 times since"), "{body}");
    assert!(body.contains("Example: 10.0.0."), "{body}");
    let suggested = r#"http.response.status_code:[500 TO 599] agent.id:"web1""#;
    assert!(
        body.contains(&format!("Search: garonne-collector search '{suggested}'")),
        "{body}"
    );

    // The dead channel does not hold the pipeline back.
    append(&logs.join("access.log"), access_lines(200, 5).as_bytes());
    wait_until(READY_TIMEOUT, "all 40 lines indexed", || {
        collector.count("event.dataset:apache.access") == 40
    });
    // The suggested search finds the lines that fired the alert, and only them.
    assert_eq!(collector.count(suggested), 20);

    let messages = hook.wait_for("the resolved message", |m| {
        m.iter().any(|message| action(message) == "resolve")
    });
    let actions: Vec<&str> = messages.iter().map(action).collect();
    assert_eq!(actions, ["fire", "remind", "resolve"], "{messages:#?}");
    assert!(messages[2]["body"].as_str().unwrap().contains("Resolved: "));

    // The dead channel comes back: its retries deliver what it missed.
    down_socket.listen(128).unwrap();
    let down = Receiver::on(TcpListener::from(down_socket));
    down.wait_for("a retried delivery", |m| {
        m.iter()
            .any(|message| message["key"] == "alert:web-5xx:web1")
    });

    // Alerts are indexed and listed.
    wait_until(READY_TIMEOUT, "three alert documents", || {
        collector.count("event.dataset:alerts") == 3
    });
    let listing = std::process::Command::new(binary("garonne-collector"))
        .args(["alerts", "list", "--config"])
        .arg(&collector.config)
        .output()
        .unwrap();
    let listing = String::from_utf8_lossy(&listing.stdout);
    assert!(
        listing
            .lines()
            .any(|line| line.starts_with("resolved") && line.contains("web-5xx")),
        "{listing}"
    );
}

fn syslog_line(template: &str, number: usize) -> String {
    format!("<11>Oct 11 22:14:15 web1 app[{number}]: {template} {number}\n")
}

#[test]
fn a_new_template_fires_once_and_a_restart_sends_nothing_again() {
    let dir = tempfile::tempdir().unwrap();
    let certs = Certs::create(dir.path()).unwrap();
    let logs = dir.path().join("logs");
    std::fs::create_dir_all(&logs).unwrap();
    let hook = Receiver::start();
    let config = format!(
        "{}\
         [[alert]]\nname = \"web-5xx\"\nkind = \"threshold\"\n\
         condition = \"http.response.status_code == 5xx\"\ncount = 3\nwindow = \"60s\"\n\
         group_window = \"1s\"\nresolve_after = \"10m\"\nnotify = [\"hook\"]\n\
         [[alert]]\nname = \"new-template\"\nkind = \"new_template\"\n\
         condition = 'event.dataset == \"syslog\"'\nlearning_period = \"0s\"\n\
         group_window = \"1s\"\nnotify = [\"hook\"]\n",
        webhook("hook", &hook.url(), ""),
    );
    let mut collector = Collector::start(dir.path(), &certs, &config).unwrap();
    // Keep the collector's port across the restart so the agent finds it again.
    let text = std::fs::read_to_string(&collector.config).unwrap();
    let fixed = text.replacen(
        "listen = \"127.0.0.1:0\"",
        &format!("listen = \"127.0.0.1:{}\"", collector.port),
        1,
    );
    std::fs::write(&collector.config, fixed).unwrap();
    let agent_config = agent_config(dir.path(), &certs, collector.port, &inputs(&logs), "");
    let _agent = start_agent(dir.path(), &agent_config).unwrap();

    append(&logs.join("access.log"), access_lines(500, 5).as_bytes());
    let template_a = "worker crashed with signal";
    let lines: String = (1..=3).map(|n| syslog_line(template_a, n)).collect();
    append(&logs.join("syslog"), lines.as_bytes());
    let messages = hook.wait_for("both rules to fire", |m| m.len() >= 2);
    assert_eq!(messages.len(), 2, "{messages:#?}");
    let new_template = hook.of_rule("new-template");
    assert_eq!(
        new_template.len(),
        1,
        "three lines, one template, one message"
    );
    let title = new_template[0]["title"].as_str().unwrap();
    assert!(title.contains("new log template"), "{title}");
    assert!(new_template[0]["fields"]["template"].is_string());

    // The same template again stays quiet; another new one fires.
    let template_b = "disk almost full on volume";
    let more = syslog_line(template_a, 4) + &syslog_line(template_b, 5);
    append(&logs.join("syslog"), more.as_bytes());
    hook.wait_for("the second template", |m| m.len() >= 3);
    assert_eq!(hook.of_rule("new-template").len(), 2);

    // Restart while web-5xx is firing: neither alert is sent again.
    collector.process.stop();
    let collector = Collector::start_with(dir.path(), collector.config.clone()).unwrap();
    append(&logs.join("access.log"), access_lines(502, 5).as_bytes());
    append(&logs.join("syslog"), syslog_line(template_a, 6).as_bytes());
    wait_until(READY_TIMEOUT, "every line indexed", || {
        collector.count("event.dataset:apache.access") == 10
            && collector.count("event.dataset:syslog") == 6
    });
    let template_c = "backup finished after retries";
    append(&logs.join("syslog"), syslog_line(template_c, 7).as_bytes());
    hook.wait_for("the third template", |m| m.len() >= 4);
    assert_eq!(hook.of_rule("web-5xx").len(), 1, "{:#?}", hook.messages());
    assert_eq!(
        hook.of_rule("new-template").len(),
        3,
        "{:#?}",
        hook.messages()
    );
}
