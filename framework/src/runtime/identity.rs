//! Who an instance is in the consumer group: a stable identity carried in each stream
//! thread's consumer `client.id`, from which every member reads the group's instances and
//! threads when it computes the task assignment.

use std::path::Path;

use super::assignor::Member;
use crate::config::StreamsConfig;
use crate::error::StreamsError;

const IDENTITY_FILE: &str = "streamtime-process-id";

/// The instance's identity: its `instance_id`, else an id created once and kept in
/// `<state_dir>/<application_id>/`, so a restarted instance is recognised and gets its tasks
/// back where their state is.
pub(crate) fn instance_identity(config: &StreamsConfig) -> Result<String, StreamsError> {
    if let Some(id) = &config.instance_id {
        return Ok(id.clone());
    }
    let dir = config.state_dir.join(&config.application_id);
    persisted_identity(&dir).map_err(|e| {
        StreamsError::State(format!(
            "cannot keep the instance identity in {}: {e}",
            dir.display()
        ))
    })
}

fn persisted_identity(dir: &Path) -> std::io::Result<String> {
    let path = dir.join(IDENTITY_FILE);
    if let Ok(text) = std::fs::read_to_string(&path) {
        let id = text.trim();
        if is_valid(id) {
            return Ok(id.to_string());
        }
        tracing::warn!(path = %path.display(), "unreadable instance identity; creating a new one");
    }
    std::fs::create_dir_all(dir)?;
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    let id = format!("p{:x}{:x}", std::process::id(), nanos & 0xffff_ffff_ffff);
    let tmp = dir.join(format!("{IDENTITY_FILE}.tmp"));
    std::fs::write(&tmp, &id)?;
    std::fs::rename(&tmp, &path)?;
    Ok(id)
}

fn is_valid(id: &str) -> bool {
    !id.is_empty()
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
}

/// The separator between a consumer's name and its instance's `application_server`.
const SERVER_SEPARATOR: char = '@';

/// The consumer `client.id` of thread `thread` (1-based), with the instance's query address
/// (`application_server`) after a `@` when it has one.
pub(crate) fn consumer_client_id(
    application_id: &str,
    identity: &str,
    thread: u32,
    application_server: Option<&str>,
) -> String {
    let name = format!("{application_id}-{identity}-StreamThread-{thread}-consumer");
    match application_server {
        Some(server) => format!("{name}{SERVER_SEPARATOR}{server}"),
        None => name,
    }
}

/// The `application_server` a client id carries.
pub(crate) fn server_of(client_id: &str) -> Option<String> {
    client_id
        .split_once(SERVER_SEPARATOR)
        .map(|(_, server)| server.to_string())
        .filter(|s| !s.is_empty())
}

/// The member a client id names; `None` for consumers that are not streamtime threads of
/// this application.
pub(crate) fn parse_member(
    application_id: &str,
    client_id: &str,
    member_id: &str,
) -> Option<Member> {
    let name = client_id
        .split_once(SERVER_SEPARATOR)
        .map_or(client_id, |(name, _)| name);
    let rest = name
        .strip_prefix(application_id)?
        .strip_prefix('-')?
        .strip_suffix("-consumer")?;
    let (instance, thread) = rest.rsplit_once("-StreamThread-")?;
    Some(Member {
        instance: instance.to_string(),
        thread: thread.parse().ok()?,
        member_id: member_id.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_ids_round_trip_and_foreign_ones_are_ignored() {
        let id = consumer_client_id("my-app", "node-1", 2, None);
        let m = parse_member("my-app", &id, "m-1").unwrap();
        assert_eq!((m.instance.as_str(), m.thread), ("node-1", 2));
        assert_eq!(server_of(&id), None);
        let served = consumer_client_id("my-app", "node-1", 2, Some("10.0.0.7:8080"));
        assert_eq!(parse_member("my-app", &served, "m-1"), Some(m));
        assert_eq!(server_of(&served).as_deref(), Some("10.0.0.7:8080"));
        assert_eq!(parse_member("other-app", &id, "m"), None);
        assert_eq!(parse_member("my-app", "rdkafka", "m"), None);
        assert_eq!(
            parse_member("my-app", "my-app-x-StreamThread-z-consumer", "m"),
            None
        );
    }

    #[test]
    fn the_identity_survives_a_restart() {
        let tmp = tempfile::tempdir().unwrap();
        let config = StreamsConfig::new("app", "localhost:9092").state_dir(tmp.path());
        let first = instance_identity(&config).unwrap();
        assert_eq!(instance_identity(&config).unwrap(), first);
        assert!(is_valid(&first));
        let named = config.instance_id("node-7");
        assert_eq!(instance_identity(&named).unwrap(), "node-7");
    }
}
