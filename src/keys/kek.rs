//! The key-encryption key (KEK) that seals the shared key set at rest. It never lives in the
//! store it protects: it comes from `keys.kek` (or `TONGZHENG_KEYS__KEK`) or `keys.kek_file`, and
//! several may be given so the set can be re-sealed under a new one (the first seals, all open).

use std::path::Path;

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD};

use super::KeyError;
use crate::config::KeysConfig;
use crate::sealing::DataKey;

/// One KEK: AES-256-GCM (through [`DataKey`]'s sealing) and a public id naming it.
pub struct Kek {
    id: String,
    key: DataKey,
}

impl std::fmt::Debug for Kek {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Kek({})", self.id)
    }
}

impl Kek {
    /// A KEK from 32 raw bytes.
    fn from_bytes(raw: &[u8]) -> Option<Self> {
        let key = DataKey::from_bytes(raw).ok()?;
        // A keyed digest, not the key: it names the KEK in the record and in messages.
        let id = key.derive("tongzheng key-encryption key id").chars().take(16).collect();
        Some(Self { id, key })
    }

    /// The id recorded next to what this KEK sealed.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// Seals `plain`, bound to `context`.
    pub fn seal(&self, plain: &str, context: &str) -> String {
        self.key.seal(plain, context)
    }

    /// Opens what [`Kek::seal`] sealed for `context`.
    pub fn open(&self, sealed: &str, context: &str) -> Option<String> {
        self.key.open(sealed, context)
    }
}

/// The configured KEKs: the first seals, every one opens.
#[derive(Debug)]
pub struct KekRing {
    sealing: Kek,
    others: Vec<Kek>,
}

/// Name of the KEK file generated in dev mode, in `keys.dir`.
pub const DEV_KEK_FILE: &str = "kek";

impl KekRing {
    /// Parses KEKs separated by commas, spaces or newlines (`#` starts a comment line): each
    /// the base64 (standard or URL-safe, padded or not) of 32 random bytes.
    pub fn parse(text: &str) -> Result<Self, String> {
        let mut keks = Vec::new();
        let entries = text.lines().filter(|l| !l.trim_start().starts_with('#')).flat_map(|l| l.split([',', ' ', '\t']));
        for (i, entry) in entries.map(str::trim).filter(|e| !e.is_empty()).enumerate() {
            let raw = [STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD]
                .iter()
                .find_map(|engine| engine.decode(entry).ok())
                .ok_or_else(|| format!("entry {} is not base64", i + 1))?;
            let kek = Kek::from_bytes(&raw).ok_or_else(|| format!("entry {} is not 32 bytes", i + 1))?;
            keks.push(kek);
        }
        let mut keks = keks.into_iter();
        let sealing = keks.next().ok_or("no key given")?;
        Ok(Self { sealing, others: keks.collect() })
    }

    /// The KEKs of the configuration: `keys.kek`, else `keys.kek_file`, else (dev mode only) a
    /// KEK generated once into `keys.dir/kek`, beside a `.gitignore`.
    pub fn from_config(config: &KeysConfig, dev: bool) -> Result<Self, KeyError> {
        if !config.kek.is_empty() {
            return Self::parse(&config.kek).map_err(|e| KeyError::Kek(format!("keys.kek: {e}")));
        }
        if !config.kek_file.as_os_str().is_empty() {
            return Self::from_file(&config.kek_file, "keys.kek_file");
        }
        if !dev {
            return Err(KeyError::Kek(crate::config::NO_KEK.into()));
        }
        let path = config.dir.join(DEV_KEK_FILE);
        if !path.exists() {
            let kek = crate::crypto::b64(&DataKey::generate());
            write_private(&config.dir, DEV_KEK_FILE, format!("{kek}\n").as_bytes())?;
            tracing::info!(path = %path.display(), "dev mode: generated a key-encryption key");
        }
        Self::from_file(&path, "keys.dir")
    }

    fn from_file(path: &Path, field: &str) -> Result<Self, KeyError> {
        let text = std::fs::read_to_string(path).map_err(|source| KeyError::Io { path: path.to_owned(), source })?;
        Self::parse(&text).map_err(|e| KeyError::Kek(format!("{field} ({}): {e}", path.display())))
    }

    /// The KEK that seals.
    pub fn sealing(&self) -> &Kek {
        &self.sealing
    }

    /// The KEK named `id`, if configured.
    pub fn by_id(&self, id: &str) -> Option<&Kek> {
        std::iter::once(&self.sealing).chain(&self.others).find(|k| k.id == id)
    }

    /// Every configured KEK's id, the sealing one first.
    pub fn ids(&self) -> Vec<&str> {
        std::iter::once(&self.sealing).chain(&self.others).map(|k| k.id.as_str()).collect()
    }
}

/// Writes `dir/name` with owner-only permissions (temp file + rename), making sure the
/// directory has a .gitignore so nothing in it is ever committed.
pub fn write_private(dir: &Path, name: &str, bytes: &[u8]) -> Result<(), KeyError> {
    let io = |path: &Path| {
        let path = path.to_owned();
        move |source| KeyError::Io { path, source }
    };
    std::fs::create_dir_all(dir).map_err(io(dir))?;
    let ignore = dir.join(".gitignore");
    if !ignore.exists() {
        std::fs::write(&ignore, "# Key material: never commit.\n*\n!.gitignore\n").map_err(io(&ignore))?;
    }
    let path = dir.join(name);
    let tmp = dir.join(format!("{name}.tmp"));
    {
        use std::io::Write;
        let mut opts = std::fs::OpenOptions::new();
        opts.write(true).create(true).truncate(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            opts.mode(0o600);
        }
        let mut f = opts.open(&tmp).map_err(io(&tmp))?;
        f.write_all(bytes).map_err(io(&tmp))?;
        f.sync_all().map_err(io(&tmp))?;
    }
    std::fs::rename(&tmp, &path).map_err(io(&path))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_lists_in_every_base64_flavour() {
        let raw = [7u8; 32];
        let std = STANDARD.encode(raw);
        let url = URL_SAFE_NO_PAD.encode([9u8; 32]);
        let ring =
            KekRing::parse(&format!("# new first\n{url}\n{std}, {}", STANDARD_NO_PAD.encode([5u8; 32]))).unwrap();
        let ids = ring.ids();
        assert_eq!(ids.len(), 3);
        assert_eq!(ring.sealing().id(), ids[0]);
        assert_ne!(ids[0], ids[1]);
        assert_eq!(KekRing::parse(&URL_SAFE.encode([9u8; 32])).unwrap().sealing().id(), ids[0], "same key, same id");
        let sealed = ring.sealing().seal("x", "c");
        assert_eq!(ring.by_id(ids[0]).unwrap().open(&sealed, "c").as_deref(), Some("x"));
        assert!(ring.by_id(ids[1]).unwrap().open(&sealed, "c").is_none());
        assert!(ring.by_id("nope").is_none());
        assert!(KekRing::parse("").is_err());
        assert!(KekRing::parse(&STANDARD.encode([1u8; 16])).unwrap_err().contains("32 bytes"));
        assert!(KekRing::parse("not*base64").unwrap_err().contains("base64"));
    }
}
