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

/// Where the data dir was when its key was last used: the host and the path (see [`Home`]).
pub const HOME_FILE: &str = "identity.home";

/// Present when neighbours found another process with this node's identity: the next start
/// takes a new key.
pub const REKEY_FILE: &str = "identity.rekey";

/// The key a re-keyed data dir had, kept beside the new one.
pub const REPLACED_KEY_FILE: &str = "identity.key.replaced";

/// The node's network identity, as loaded.
pub struct Identity {
    /// The key.
    pub key: Keypair,
    /// Set when the data dir was found copied or moved: the identity it had, and where it was.
    pub rekeyed: Option<Rekeyed>,
}

/// A data dir that got a new key at start: found away from its home, or marked by its
/// neighbours as sharing its identity with another process.
#[derive(Clone, Debug)]
pub struct Rekeyed {
    /// The PeerId it had.
    pub from: libp2p::PeerId,
    /// Why.
    pub why: String,
}

impl Rekeyed {
    /// One line for the log and `/health`.
    pub fn describe(&self) -> String {
        format!(
            "{}: new network identity, the previous one ({}) stays with the other copy",
            self.why, self.from
        )
    }
}

/// A data dir's home: the machine (its machine id and host name) and the data dir's absolute
/// path. Two processes holding one network identity confuse every peer (each sees one node that
/// answers as two), so a data dir whose home changed — a copy beside the original, a container
/// image started twice, a directory moved — gets a new key on start; its data and writes are
/// kept (each start writes under a fresh replica id anyway). A VM cloned whole keeps its home:
/// give clones a fresh machine id, as cloning tools do.
fn home(data_dir: &Path) -> String {
    let read = |p: &str| {
        fs::read_to_string(p)
            .map(|s| s.trim().to_string())
            .unwrap_or_default()
    };
    let path = fs::canonicalize(data_dir).unwrap_or_else(|_| data_dir.to_path_buf());
    format!(
        "machine {} host {} path {}",
        read("/etc/machine-id"),
        read("/proc/sys/kernel/hostname"),
        path.display()
    )
}

/// Loads the identity from `data_dir`, creating the dir and a fresh key (mode 0600) if absent,
/// and a new key if the data dir's home changed (see [`home`]; the old key is kept as
/// [`REPLACED_KEY_FILE`]).
pub fn load_or_create(data_dir: &Path) -> anyhow::Result<Identity> {
    fs::create_dir_all(data_dir)
        .with_context(|| format!("creating data dir {}", data_dir.display()))?;
    let path = data_dir.join(KEY_FILE);
    let here = home(data_dir);
    let home_path = data_dir.join(HOME_FILE);
    let key = match fs::read(&path) {
        Ok(bytes) => {
            let mode = fs::metadata(&path)?.permissions().mode() & 0o777;
            if mode & 0o077 != 0 {
                bail!(
                    "{} is readable by others (mode {mode:o}); chmod 600 it",
                    path.display()
                );
            }
            Some(
                Keypair::from_protobuf_encoding(&bytes)
                    .with_context(|| format!("{} is not an identity key", path.display()))?,
            )
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
    };
    // A data dir from before homes were kept has none: it is adopted where it is.
    let was = fs::read_to_string(&home_path)
        .ok()
        .map(|s| s.trim().to_string());
    let clone_marked = data_dir.join(REKEY_FILE).exists();
    let (key, rekeyed) = match (key, was) {
        (Some(key), Some(_)) if clone_marked => {
            fs::rename(&path, data_dir.join(REPLACED_KEY_FILE))
                .with_context(|| format!("setting {} aside", path.display()))?;
            let rekeyed = Rekeyed {
                from: key.public().to_peer_id(),
                why: "its neighbours found another process answering with this data dir's \
                      identity (a copy, e.g. a VM clone)"
                    .into(),
            };
            (create_key(&path)?, Some(rekeyed))
        }
        (Some(key), Some(was)) if was != here => {
            fs::rename(&path, data_dir.join(REPLACED_KEY_FILE))
                .with_context(|| format!("setting {} aside", path.display()))?;
            let rekeyed = Rekeyed {
                from: key.public().to_peer_id(),
                why: format!(
                    "the data dir was copied or moved (its key was last used at {was}, it is now \
                     at {here})"
                ),
            };
            (create_key(&path)?, Some(rekeyed))
        }
        (Some(key), _) => (key, None),
        (None, _) => (create_key(&path)?, None),
    };
    write_synced(&home_path, here.as_bytes(), 0o644)?;
    if clone_marked {
        fs::remove_file(data_dir.join(REKEY_FILE))?;
    }
    Ok(Identity { key, rekeyed })
}

fn create_key(path: &Path) -> anyhow::Result<Keypair> {
    let key = Keypair::generate_ed25519();
    let bytes = key
        .to_protobuf_encoding()
        .context("encoding the new identity key")?;
    let mut f = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("creating {}", path.display()))?;
    f.write_all(&bytes)?;
    f.sync_all()?;
    Ok(key)
}

/// Writes `bytes` to `path` through a temporary file, renamed into place once synced.
fn write_synced(path: &Path, bytes: &[u8], mode: u32) -> anyhow::Result<()> {
    let tmp = path.with_extension("tmp");
    let mut f = fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(mode)
        .open(&tmp)
        .with_context(|| format!("writing {}", tmp.display()))?;
    f.write_all(bytes)?;
    f.sync_all()?;
    fs::rename(&tmp, path).with_context(|| format!("writing {}", path.display()))
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
        assert_eq!(a.key.public().to_peer_id(), b.key.public().to_peer_id());
        assert!(a.rekeyed.is_none() && b.rekeyed.is_none());
        fs::set_permissions(dir.join(KEY_FILE), fs::Permissions::from_mode(0o644)).unwrap();
        assert!(
            load_or_create(&dir).is_err(),
            "a key others can read is refused"
        );
        fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn a_copied_data_dir_gets_a_new_key_and_an_old_one_is_adopted_where_it_is() {
        let base = std::env::temp_dir().join(format!("deltanode-home-{}", std::process::id()));
        let (a, b) = (base.join("a"), base.join("b"));
        let first = load_or_create(&a).unwrap().key.public().to_peer_id();
        // A copy elsewhere: a new identity, the old key set aside.
        fs::create_dir_all(&b).unwrap();
        for f in [KEY_FILE, HOME_FILE] {
            fs::copy(a.join(f), b.join(f)).unwrap();
        }
        let copy = load_or_create(&b).unwrap();
        let rekeyed = copy.rekeyed.expect("the copy is re-keyed");
        assert_eq!(rekeyed.from, first);
        assert_ne!(copy.key.public().to_peer_id(), first);
        assert!(rekeyed.describe().contains(&first.to_string()));
        assert!(b.join(REPLACED_KEY_FILE).exists());
        // The copy keeps its new identity from then on; the original keeps its own.
        let again = load_or_create(&b).unwrap();
        assert!(again.rekeyed.is_none());
        assert_eq!(again.key.public(), copy.key.public());
        assert_eq!(load_or_create(&a).unwrap().key.public().to_peer_id(), first);
        // A data dir from before homes were kept is adopted where it is.
        fs::remove_file(a.join(HOME_FILE)).unwrap();
        let adopted = load_or_create(&a).unwrap();
        assert!(adopted.rekeyed.is_none());
        assert_eq!(adopted.key.public().to_peer_id(), first);
        assert!(a.join(HOME_FILE).exists());
        fs::remove_dir_all(base).unwrap();
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
