//! The Redis backend: one multiplexed connection shared by every request (one server, a
//! Sentinel-managed master or a Cluster, over TLS or not: see `conn`), every key under a
//! configurable prefix, atomic single-use operations as Lua scripts whose keys share one
//! cluster slot (see `keys`). Every call is bounded by a deadline so a dead Redis yields a fast
//! [`StoreError::Unavailable`] (answered as 503) instead of a hung request.

mod conn;
pub mod target;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use redis::{Cmd, FromRedisValue, RedisResult, Script};

use self::conn::{Conn, Handle};
use self::target::Target;
use super::{IndexChange, Redeemed, Store, StoreError, keys};
use std::ops::Bound;

/// Redis-backed store shared by any number of tongzheng instances.
#[derive(Clone)]
pub struct RedisStore {
    conn: Arc<Conn>,
    prefix: String,
    deadline: Duration,
    redeem: Script,
    set_add: Script,
    incr: Script,
    claim: Script,
    take: Script,
    put_if: Script,
    log_append: Script,
}

impl std::fmt::Debug for RedisStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisStore").field("prefix", &self.prefix).finish_non_exhaustive()
    }
}

// KEYS[1] = value hash. ARGV[1] = now. Returns {value, first-or-false} or nil.
// KEYS[1] = redeemable hash (v: value, u: first use, n: successor). ARGV[1] = now, ARGV[2] =
// the successor the first use leaves ('' for none), ARGV[3] = the lean value that replaces v at
// the first use ('' to keep v). Returns {v as it was, first use or '', successor or ''}.
const REDEEM_LUA: &str = r"
local v = redis.call('HGET', KEYS[1], 'v')
if not v then return nil end
local first = redis.call('HGET', KEYS[1], 'u')
if not first then
  redis.call('HSET', KEYS[1], 'u', ARGV[1])
  if ARGV[2] ~= '' then redis.call('HSET', KEYS[1], 'n', ARGV[2]) end
  if ARGV[3] ~= '' then redis.call('HSET', KEYS[1], 'v', ARGV[3]) end
  return {v, '', ''}
end
return {v, first, redis.call('HGET', KEYS[1], 'n') or ''}
";

// KEYS[1] = set. ARGV[1] = member, ARGV[2] = ttl seconds or 0 for none.
const SET_ADD_LUA: &str = r"
redis.call('SADD', KEYS[1], ARGV[1])
if tonumber(ARGV[2]) > 0 then redis.call('EXPIRE', KEYS[1], ARGV[2]) end
return 1
";

// KEYS[1] = counter. ARGV[1] = ttl seconds, applied when the counter is created.
const INCR_LUA: &str = r"
local n = redis.call('INCR', KEYS[1])
if n == 1 then redis.call('EXPIRE', KEYS[1], ARGV[1]) end
return n
";

// KEYS[1] = schedule zset, KEYS[2] = payload hash. ARGV = now, lease-until, max.
const CLAIM_LUA: &str = r"
local ids = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, tonumber(ARGV[3]))
local out = {}
for _, id in ipairs(ids) do
  local p = redis.call('HGET', KEYS[2], id)
  if p then
    redis.call('ZADD', KEYS[1], ARGV[2], id)
    table.insert(out, id)
    table.insert(out, p)
  else
    redis.call('ZREM', KEYS[1], id)
  end
end
return out
";

/// Maps a Redis error: a wrong-type reply is a data problem, everything else an outage.
fn redis_err(e: redis::RedisError) -> StoreError {
    if e.code() == Some("WRONGTYPE") {
        StoreError::Corrupt { key: String::new(), reason: e.to_string() }
    } else {
        unavailable(e)
    }
}

// KEYS[1] = key. GET then DEL in one step (GETDEL needs Redis >= 6.2).
const TAKE_LUA: &str = r"
local v = redis.call('GET', KEYS[1])
if v then redis.call('DEL', KEYS[1]) end
return v
";

// KEYS[1] = key. ARGV[1] = '1' when a current value is expected, ARGV[2] = it, ARGV[3] = new.
const PUT_IF_LUA: &str = r"
local cur = redis.call('GET', KEYS[1])
if ARGV[1] == '1' then
  if cur ~= ARGV[2] then return 0 end
elseif cur then
  return 0
end
redis.call('SET', KEYS[1], ARGV[3])
return 1
";

// KEYS[1] = log zset, KEYS[2] = its counter (one hash tag). ARGV[1] = payload. The member is
// "<seq>:<payload>" (unique), the score the sequence number.
const LOG_APPEND_LUA: &str = r"
local n = redis.call('INCR', KEYS[2])
redis.call('ZADD', KEYS[1], n, n .. ':' .. ARGV[1])
return n
";

/// A lexicographic bound as Redis spells it (`[x`, `(x`, `-`, `+`).
fn lex(bound: Bound<&str>, open: &str) -> Vec<u8> {
    match bound {
        Bound::Included(x) => [b"[", x.as_bytes()].concat(),
        Bound::Excluded(x) => [b"(", x.as_bytes()].concat(),
        Bound::Unbounded => open.as_bytes().to_vec(),
    }
}

fn unavailable(e: impl std::fmt::Display) -> StoreError {
    StoreError::Unavailable(e.to_string())
}

impl RedisStore {
    /// Creates the store on the Redis at `url` (`redis://`, `rediss://`, `redis+sentinel://`...,
    /// see [`Target::from_url`]).
    pub fn connect(url: &str, prefix: &str, deadline: Duration) -> Result<Self, StoreError> {
        let target = Target::from_url(url).map_err(|(_, reason)| unavailable(reason))?;
        Self::open(&target, prefix, deadline)
    }

    /// Creates the store on `target`; the connection is made lazily and re-made after
    /// failures, so the server can start (and report not-ready) while Redis is still down.
    pub fn open(target: &Target, prefix: &str, deadline: Duration) -> Result<Self, StoreError> {
        let conn = Conn::open(target, deadline).map_err(unavailable)?;
        Ok(Self {
            conn: Arc::new(conn),
            prefix: prefix.to_owned(),
            deadline,
            redeem: Script::new(REDEEM_LUA),
            set_add: Script::new(SET_ADD_LUA),
            incr: Script::new(INCR_LUA),
            claim: Script::new(CLAIM_LUA),
            take: Script::new(TAKE_LUA),
            put_if: Script::new(PUT_IF_LUA),
            log_append: Script::new(LOG_APPEND_LUA),
        })
    }

    fn key(&self, key: &str) -> String {
        format!("{}{key}", self.prefix)
    }

    /// Runs `op` on the connection within the deadline (which covers connecting, a Sentinel
    /// lookup and cluster redirects); a failure is reported to the connection, which may
    /// reconnect (a demoted Sentinel master) for the next call.
    async fn call<T, F, Fut>(&self, op: F) -> Result<T, StoreError>
    where
        F: FnOnce(Handle) -> Fut + Send,
        Fut: Future<Output = RedisResult<T>> + Send,
    {
        let mut ticket = None;
        let attempt = async {
            let (handle, t) = self.conn.handle().await?;
            ticket = t;
            op(handle).await
        };
        let outcome = tokio::time::timeout(self.deadline, attempt).await;
        match outcome {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(e)) => {
                self.conn.failed(ticket, Some(&e));
                Err(redis_err(e))
            }
            Err(_) => {
                self.conn.failed(ticket, None);
                Err(StoreError::Unavailable("redis did not answer in time".into()))
            }
        }
    }

    async fn run<T: FromRedisValue + Send>(&self, cmd: Cmd) -> Result<T, StoreError> {
        self.call(|mut c| async move { cmd.query_async(&mut c).await }).await
    }

    async fn pipe<T: FromRedisValue + Send>(&self, pipe: redis::Pipeline) -> Result<T, StoreError> {
        self.call(|mut c| async move { pipe.query_async(&mut c).await }).await
    }

    /// Runs `script` on `keys` (already prefixed; one hash tag when there are several).
    async fn script<T: FromRedisValue + Send>(
        &self,
        script: &Script,
        keys: &[String],
        args: &[&str],
    ) -> Result<T, StoreError> {
        let mut invocation = script.prepare_invoke();
        for k in keys {
            invocation.key(k);
        }
        for a in args {
            invocation.arg(*a);
        }
        self.call(|mut c| async move { invocation.invoke_async(&mut c).await }).await
    }

    /// The prefixed keys of a queue: its schedule and its payloads, one hash tag.
    fn queue_keys(&self, queue: &str) -> (String, String) {
        (self.key(&keys::queue_schedule(queue)), self.key(&keys::queue_payloads(queue)))
    }
}

fn with_ttl(cmd: &mut Cmd, ttl: Option<u64>) {
    if let Some(ttl) = ttl {
        cmd.arg("EX").arg(ttl.max(1));
    }
}

#[async_trait]
impl Store for RedisStore {
    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        self.run(redis::cmd("GET").arg(self.key(key)).clone()).await
    }

    async fn get_many(&self, keys: &[String]) -> Result<Vec<Option<Vec<u8>>>, StoreError> {
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        let mut cmd = redis::cmd("MGET");
        for k in keys {
            cmd.arg(self.key(k));
        }
        self.run(cmd).await
    }

    async fn put(&self, key: &str, value: &[u8], ttl: Option<u64>) -> Result<(), StoreError> {
        let mut cmd = redis::cmd("SET");
        cmd.arg(self.key(key)).arg(value);
        with_ttl(&mut cmd, ttl);
        self.run::<()>(cmd).await
    }

    async fn put_new(&self, key: &str, value: &[u8], ttl: Option<u64>) -> Result<bool, StoreError> {
        let mut cmd = redis::cmd("SET");
        cmd.arg(self.key(key)).arg(value).arg("NX");
        with_ttl(&mut cmd, ttl);
        let reply: Option<String> = self.run(cmd).await?;
        Ok(reply.is_some())
    }

    async fn put_if(&self, key: &str, expected: Option<&[u8]>, value: &[u8]) -> Result<bool, StoreError> {
        let mut invocation = self.put_if.prepare_invoke();
        invocation
            .key(self.key(key))
            .arg(if expected.is_some() { "1" } else { "0" })
            .arg(expected.unwrap_or_default())
            .arg(value);
        let n: i64 = self.call(|mut c| async move { invocation.invoke_async(&mut c).await }).await?;
        Ok(n == 1)
    }

    async fn put_existing(&self, key: &str, value: &[u8], ttl: Option<u64>) -> Result<bool, StoreError> {
        let mut cmd = redis::cmd("SET");
        cmd.arg(self.key(key)).arg(value).arg("XX");
        with_ttl(&mut cmd, ttl);
        let reply: Option<String> = self.run(cmd).await?;
        Ok(reply.is_some())
    }

    async fn delete(&self, key: &str) -> Result<bool, StoreError> {
        let n: i64 = self.run(redis::cmd("DEL").arg(self.key(key)).clone()).await?;
        Ok(n > 0)
    }

    async fn take(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        self.script(&self.take, &[self.key(key)], &[]).await
    }

    async fn put_redeemable(&self, key: &str, value: &[u8], ttl: u64) -> Result<(), StoreError> {
        let k = self.key(key);
        let mut pipe = redis::pipe();
        pipe.atomic()
            .cmd("DEL")
            .arg(&k)
            .ignore()
            .cmd("HSET")
            .arg(&k)
            .arg("v")
            .arg(value)
            .ignore()
            .cmd("EXPIRE")
            .arg(&k)
            .arg(ttl.max(1))
            .ignore();
        self.pipe(pipe).await
    }

    async fn redeem(&self, key: &str, now: i64) -> Result<Option<Redeemed>, StoreError> {
        self.redeem_with(key, now, b"", b"").await
    }

    async fn redeem_with(
        &self,
        key: &str,
        now: i64,
        successor: &[u8],
        lean: &[u8],
    ) -> Result<Option<Redeemed>, StoreError> {
        let mut inv = self.redeem.prepare_invoke();
        inv.key(self.key(key)).arg(now).arg(successor).arg(lean);
        let reply: Option<(Vec<u8>, String, Vec<u8>)> =
            self.call(|mut c| async move { inv.invoke_async(&mut c).await }).await?;
        Ok(reply.map(|(value, first, next)| Redeemed {
            value,
            first_redeemed_at: first.parse().ok(),
            successor: (!next.is_empty()).then_some(next),
        }))
    }

    async fn drop_successor(&self, key: &str) -> Result<(), StoreError> {
        self.run::<i64>(redis::cmd("HDEL").arg(self.key(key)).arg("n").clone()).await.map(|_| ())
    }

    async fn peek(&self, key: &str) -> Result<Option<Redeemed>, StoreError> {
        let (value, first, next): (Option<Vec<u8>>, Option<String>, Option<Vec<u8>>) =
            self.run(redis::cmd("HMGET").arg(self.key(key)).arg("v").arg("u").arg("n").clone()).await?;
        Ok(value.map(|value| Redeemed {
            value,
            first_redeemed_at: first.and_then(|f| f.parse().ok()),
            successor: next.filter(|n| !n.is_empty()),
        }))
    }

    async fn expire(&self, key: &str, ttl: u64) -> Result<bool, StoreError> {
        let n: i64 = self.run(redis::cmd("EXPIRE").arg(self.key(key)).arg(ttl.max(1)).clone()).await?;
        Ok(n == 1)
    }

    async fn set_add(&self, key: &str, member: &str, ttl: Option<u64>) -> Result<(), StoreError> {
        let ttl = ttl.unwrap_or(0).to_string();
        self.script::<i64>(&self.set_add, &[self.key(key)], &[member, &ttl]).await.map(|_| ())
    }

    async fn set_remove(&self, key: &str, member: &str) -> Result<bool, StoreError> {
        let n: i64 = self.run(redis::cmd("SREM").arg(self.key(key)).arg(member).clone()).await?;
        Ok(n > 0)
    }

    async fn set_members(&self, key: &str) -> Result<Vec<String>, StoreError> {
        self.run(redis::cmd("SMEMBERS").arg(self.key(key)).clone()).await
    }

    async fn incr(&self, key: &str, ttl: u64) -> Result<i64, StoreError> {
        let ttl = ttl.max(1).to_string();
        self.script(&self.incr, &[self.key(key)], &[&ttl]).await
    }

    async fn queue_put(&self, queue: &str, id: &str, payload: &[u8], due: i64) -> Result<(), StoreError> {
        let (zset, hash) = self.queue_keys(queue);
        let mut pipe = redis::pipe();
        pipe.atomic()
            .cmd("HSET")
            .arg(&hash)
            .arg(id)
            .arg(payload)
            .ignore()
            .cmd("ZADD")
            .arg(&zset)
            .arg(due)
            .arg(id)
            .ignore();
        self.pipe(pipe).await
    }

    async fn queue_put_new(&self, queue: &str, id: &str, payload: &[u8], due: i64) -> Result<bool, StoreError> {
        let (zset, hash) = self.queue_keys(queue);
        let mut pipe = redis::pipe();
        pipe.atomic()
            .cmd("ZADD")
            .arg(&zset)
            .arg("NX")
            .arg(due)
            .arg(id)
            .cmd("HSETNX")
            .arg(&hash)
            .arg(id)
            .arg(payload)
            .ignore();
        let (added,): (i64,) = self.pipe(pipe).await?;
        Ok(added > 0)
    }

    async fn queue_touch(&self, queue: &str, id: &str, due: i64) -> Result<(), StoreError> {
        self.run::<i64>(redis::cmd("ZADD").arg(self.queue_keys(queue).0).arg("XX").arg(due).arg(id).clone())
            .await
            .map(|_| ())
    }

    async fn queue_claim(
        &self,
        queue: &str,
        now: i64,
        lease: i64,
        max: usize,
    ) -> Result<Vec<(String, Vec<u8>)>, StoreError> {
        let (zset, hash) = self.queue_keys(queue);
        let (now, until, max) = (now.to_string(), (now + lease).to_string(), max.to_string());
        let flat: Vec<Vec<u8>> = self.script(&self.claim, &[zset, hash], &[&now, &until, &max]).await?;
        Ok(flat
            .chunks_exact(2)
            .filter_map(|pair| match pair {
                [id, payload] => Some((String::from_utf8_lossy(id).into_owned(), payload.clone())),
                _ => None,
            })
            .collect())
    }

    async fn queue_remove(&self, queue: &str, id: &str) -> Result<bool, StoreError> {
        let (zset, hash) = self.queue_keys(queue);
        let mut pipe = redis::pipe();
        pipe.atomic().cmd("ZREM").arg(&zset).arg(id).cmd("HDEL").arg(&hash).arg(id).ignore();
        let (removed,): (i64,) = self.pipe(pipe).await?;
        Ok(removed > 0)
    }

    async fn queue_len(&self, queue: &str) -> Result<u64, StoreError> {
        self.run(redis::cmd("ZCARD").arg(self.queue_keys(queue).0).clone()).await
    }

    async fn queue_release(&self, queue: &str, ids: &[String], now: i64) -> Result<usize, StoreError> {
        if ids.is_empty() {
            return Ok(0);
        }
        // XX: only items still queued (a finished delivery is not brought back); CH: count them.
        let mut cmd = redis::cmd("ZADD");
        cmd.arg(self.queue_keys(queue).0).arg("XX").arg("CH");
        for id in ids {
            cmd.arg(now).arg(id);
        }
        let changed: i64 = self.run(cmd).await?;
        Ok(usize::try_from(changed).unwrap_or(0))
    }

    async fn index_apply(&self, changes: &[IndexChange]) -> Result<(), StoreError> {
        // One variadic command per index and direction, sent together on the multiplexed
        // connection (each on its own slot in a Cluster, so no cross-slot pipeline).
        let mut grouped: std::collections::BTreeMap<(&str, bool), Vec<&str>> = std::collections::BTreeMap::new();
        for c in changes {
            grouped.entry((c.key.as_str(), c.add)).or_default().push(c.member.as_str());
        }
        let calls = grouped.into_iter().map(|((key, add), members)| {
            let mut cmd = redis::cmd(if add { "ZADD" } else { "ZREM" });
            cmd.arg(self.key(key));
            for m in members {
                if add {
                    cmd.arg(0);
                }
                cmd.arg(m);
            }
            self.run::<i64>(cmd)
        });
        futures_util::future::try_join_all(calls).await.map(|_| ())
    }

    async fn index_range(
        &self,
        key: &str,
        from: Bound<&str>,
        to: Bound<&str>,
        offset: usize,
        limit: usize,
        rev: bool,
    ) -> Result<Vec<String>, StoreError> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        let (min, max) = (lex(from, "-"), lex(to, "+"));
        let mut cmd = redis::cmd(if rev { "ZREVRANGEBYLEX" } else { "ZRANGEBYLEX" });
        cmd.arg(self.key(key));
        if rev {
            cmd.arg(max).arg(min);
        } else {
            cmd.arg(min).arg(max);
        }
        cmd.arg("LIMIT").arg(offset).arg(limit);
        self.run(cmd).await
    }

    async fn index_count(&self, key: &str, from: Bound<&str>, to: Bound<&str>) -> Result<u64, StoreError> {
        let cmd = redis::cmd("ZLEXCOUNT").arg(self.key(key)).arg(lex(from, "-")).arg(lex(to, "+")).clone();
        self.run(cmd).await
    }

    async fn log_append(&self, log: &str, payload: &[u8]) -> Result<u64, StoreError> {
        let mut inv = self.log_append.prepare_invoke();
        inv.key(self.key(&keys::log_entries(log))).key(self.key(&keys::log_counter(log))).arg(payload);
        self.call(|mut c| async move { inv.invoke_async(&mut c).await }).await
    }

    async fn log_read(&self, log: &str, after: u64, max: usize) -> Result<Vec<(u64, Vec<u8>)>, StoreError> {
        if max == 0 {
            return Ok(Vec::new());
        }
        let cmd = redis::cmd("ZRANGEBYSCORE")
            .arg(self.key(&keys::log_entries(log)))
            .arg(format!("({after}"))
            .arg("+inf")
            .arg("LIMIT")
            .arg(0)
            .arg(max)
            .clone();
        let members: Vec<Vec<u8>> = self.run(cmd).await?;
        Ok(members
            .into_iter()
            .filter_map(|m| {
                let colon = m.iter().position(|b| *b == b':')?;
                let (n, rest) = m.split_at(colon);
                let seq = std::str::from_utf8(n).ok()?.parse().ok()?;
                Some((seq, rest.get(1..).unwrap_or_default().to_vec()))
            })
            .collect())
    }

    async fn log_last(&self, log: &str) -> Result<u64, StoreError> {
        let last: Option<u64> = self.run(redis::cmd("GET").arg(self.key(&keys::log_counter(log))).clone()).await?;
        Ok(last.unwrap_or(0))
    }

    async fn log_trim(&self, log: &str, upto: u64) -> Result<u64, StoreError> {
        let cmd = redis::cmd("ZREMRANGEBYSCORE").arg(self.key(&keys::log_entries(log))).arg("-inf").arg(upto).clone();
        self.run(cmd).await
    }

    async fn ping(&self) -> Result<(), StoreError> {
        let pong: String = self.run(redis::cmd("PING")).await?;
        if pong == "PONG" { Ok(()) } else { Err(unavailable(format!("unexpected PING reply {pong}"))) }
    }

    async fn probe_write(&self, key: &str, now: i64) -> Result<(), StoreError> {
        // A replica answers READONLY, a full Redis OOM, a master short of replicas NOREPLICAS.
        self.run::<()>(redis::cmd("SET").arg(self.key(key)).arg(now).arg("EX").arg(super::PROBE_TTL).clone()).await
    }
}
