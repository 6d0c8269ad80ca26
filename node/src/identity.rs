//! The node's identity (an ed25519 key kept in the data dir) and the private-network key.

use anyhow::{bail, Context};
use libp2p::identity::Keypair;
use libp2p::pnet::PreSharedKey;
use std::fs;
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::Path;

/// The identity key's file name inside the data dir.
pub const KEY_FILE: &str = "identity.key";

/// Loads the identity from `data_dir`, creating the dir and a fresh key (mode 0600) if absent.
pub fn load_or_create(data_dir: &Path) -> anyhow::Result<Keypair> {
    fs::create_dir_all(data_dir)
        .with_context(|| format!("creating data dir {}", data_dir.display()))?;
    let path = data_dir.join(KEY_FILE);
    match fs::read(&path) {
        Ok(bytes) => {
            let mode = fs::metadata(&path)?.permissions().mode() & 0o777;
            if mode & 0o077 != 0 {
                bail!(
                    "{} is readable by others (mode {mode:o}); chmod 600 it",
                    path.display()
                );
            }
            Keypair::from_protobuf_encoding(&bytes)
                .with_context(|| format!("{} is not an identity key", path.display()))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let key = Keypair::generate_ed25519();
            let bytes = key
                .to_protobuf_encoding()
                .context("encoding the new identity key")?;
            let mut f = fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(&path)
                .with_context(|| format!("creating {}", path.display()))?;
            f.write_all(&bytes)?;
            f.sync_all()?;
            Ok(key)
        }
        Err(e) => Err(e).with_context(|| format!("reading {}", path.display())),
    }
}

/// Reads a pre-shared key in the usual `swarm.key` format (`/key/swarm/psk/1.0.0/`, `/base16/`, 64 hex digits).
pub fn load_swarm_key(path: &Path) -> anyhow::Result<PreSharedKey> {
    let text = fs::read_to_string(path)
        .with_context(|| format!("reading swarm key {}", path.display()))?;
    text.trim()
        .parse()
        .map_err(|e| anyhow::anyhow!("{} is not a swarm key: {e}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_key_is_created_private_and_reloaded_the_same() {
        let dir = std::env::temp_dir().join(format!("deltanode-id-{}", std::process::id()));
        let a = load_or_create(&dir).unwrap();
        let mode = fs::metadata(dir.join(KEY_FILE))
            .unwrap()
            .permissions()
            .mode()
            & 0o777;
        assert_eq!(mode, 0o600);
        let b = load_or_create(&dir).unwrap();
        assert_eq!(a.public().to_peer_id(), b.public().to_peer_id());
        fs::set_permissions(dir.join(KEY_FILE), fs::Permissions::from_mode(0o644)).unwrap();
        assert!(
            load_or_create(&dir).is_err(),
            "a key others can read is refused"
        );
        fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn swarm_keys_parse_in_the_usual_format_only() {
        let dir = std::env::temp_dir().join(format!("deltanode-psk-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        let good = dir.join("good.key");
        fs::write(
            &good,
            format!("/key/swarm/psk/1.0.0/\n/base16/\n{}\n", "ab".repeat(32)),
        )
        .unwrap();
        assert!(load_swarm_key(&good).is_ok());
        let bad = dir.join("bad.key");
        fs::write(&bad, "not a key").unwrap();
        assert!(load_swarm_key(&bad).is_err());
        fs::remove_dir_all(dir).unwrap();
    }
}
