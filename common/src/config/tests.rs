use super::*;

const AGENT: &str = r#"
[agent]
id = "web1"
data_dir = "/tmp/agent"

[[input]]
paths = ["/var/log/apache2/*access*.log"]
module = "apache.access"

[collector]
addresses = ["collector.example.org:4433"]
server_name = "collector.example.org"
ca = "/etc/garonne/ca.pem"
cert = "/etc/garonne/agent.pem"
key = "/etc/garonne/agent.key"
"#;

fn agent_problems(text: &str) -> Vec<String> {
    AgentConfig::parse(text, Path::new("agent.toml"))
        .unwrap_err()
        .problems
}

#[test]
fn documented_agent_example_is_valid_with_defaults() {
    let config = AgentConfig::parse(AGENT, Path::new("agent.toml")).unwrap();
    assert_eq!(config.agent.id.as_deref(), Some("web1"));
    assert_eq!(config.inputs[0].module, Module::ApacheAccess);
    assert_eq!(config.inputs[0].max_line_bytes, DEFAULT_MAX_LINE_BYTES);
    assert_eq!(config.buffer.max_bytes, DEFAULT_BUFFER_MAX_BYTES);
    assert_eq!(config.collector.max_in_flight, DEFAULT_MAX_IN_FLIGHT);
}

#[test]
fn unknown_key_is_named_with_its_line() {
    let text = AGENT.replace("[agent]\n", "[agent]\ncolour = \"blue\"\n");
    let problems = agent_problems(&text);
    assert_eq!(problems.len(), 1);
    assert!(problems[0].contains("colour"), "{problems:?}");
    assert!(problems[0].contains("line 3"), "{problems:?}");
}

#[test]
fn bad_value_is_named_with_key_and_value() {
    let text = format!("{AGENT}\n[buffer]\nmax_bytes = \"12XB\"\n");
    let problems = agent_problems(&text);
    assert!(problems[0].starts_with("buffer.max_bytes:"), "{problems:?}");
    assert!(problems[0].contains("\"12XB\""), "{problems:?}");

    let text = AGENT.replace("apache.access", "apache");
    let problems = agent_problems(&text);
    assert!(problems[0].starts_with("input[0].module:"), "{problems:?}");
    assert!(problems[0].contains("apache"), "{problems:?}");
}

/// `probe` names the agent's own monitor results; a file read as such could forge
/// check results, so no input may use it.
#[test]
fn an_input_cannot_take_the_monitor_results_module() {
    let problems = agent_problems(&AGENT.replace("apache.access", "probe"));
    assert!(problems[0].starts_with("input[0].module:"), "{problems:?}");
    assert!(
        problems[0].contains("unknown module \"probe\""),
        "{problems:?}"
    );
    assert!(!problems[0].contains("`probe`"), "{problems:?}");
    assert!(problems[0].contains("plain"), "{problems:?}");
}

#[test]
fn every_rule_broken_is_reported_at_once() {
    let text = AGENT
        .replace("\"web1\"", "\"web 1\"")
        .replace("collector.example.org:4433", "no-port")
        .replace("/var/log/apache2", "var/log");
    let problems = agent_problems(&text);
    assert_eq!(problems.len(), 3, "{problems:?}");
    assert!(
        problems
            .iter()
            .any(|p| p.starts_with("agent.id: \"web 1\""))
    );
    assert!(
        problems
            .iter()
            .any(|p| p.contains("\"no-port\" is not host:port"))
    );
    assert!(
        problems
            .iter()
            .any(|p| p.contains("must be an absolute path"))
    );
}

#[test]
fn buffer_must_hold_two_batches() {
    let text = format!("{AGENT}\n[buffer]\nmax_bytes = \"1MiB\"\n[batch]\nmax_bytes = \"1MiB\"\n");
    let problems = agent_problems(&text);
    assert!(problems[0].starts_with("buffer.max_bytes: 1MiB must be at least twice"));
}

#[test]
fn collector_defaults_to_embedded_index() {
    let config = CollectorConfig::parse("[collector]\n", Path::new("c.toml")).unwrap();
    assert!(config.elasticsearch.is_none());
    assert_eq!(config.collector.sink, Sink::Index);
    assert_eq!(config.collector.listen.port(), 4433);
    let problems = config
        .check_files(Path::new("c.toml"))
        .unwrap_err()
        .problems;
    assert_eq!(problems.len(), 3);
}

#[test]
fn elasticsearch_settings_are_checked() {
    let text = "[collector]\n[elasticsearch]\nurls = [\"localhost:9200\"]\nusername = \"u\"\n\
                index_prefix = \"Garonne\"\n";
    let problems = CollectorConfig::parse(text, Path::new("c.toml"))
        .unwrap_err()
        .problems;
    assert_eq!(problems.len(), 3, "{problems:?}");
    assert!(problems[0].contains("\"localhost:9200\""));
}
