//! The application lifecycle as a closed state machine (AY-8, SH-6.2.7, SH-7.3, SH-7.4): the
//! states, the one table of legal transitions, and what each state lets an application's
//! clients do. Pure: no store, no clock.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Where an application stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum State {
    /// Registered, waiting for review (AY-8.2.1, SH-6.2.2). No credentials yet.
    Applied,
    /// Review passed; credentials allocated (AY-8.2.3); only its test users may log in while
    /// it is integrated and tested (AY-8.3).
    Approved,
    /// Grey release (SH-6.2.7 b): only the listed users and organizations may log in.
    PreRelease,
    /// Live (SH-6.2.7 c, AY-8.4.3).
    Released,
    /// Blocked after an anomaly (AY-8.5.3.2): tokens stop working at once, no new grants;
    /// rectification within a working-day deadline (AY-8.5.4).
    Suspended,
    /// Down for a fault or maintenance (SH-7.3): no new logins; returns to `released`.
    TemporarilyOffline,
    /// Closed for good (AY-8.6.3, SH-7.4): grants, tokens and secrets revoked, records archived.
    Offline,
}

impl State {
    /// Every state, in lifecycle order.
    pub const ALL: [State; 7] = [
        Self::Applied,
        Self::Approved,
        Self::PreRelease,
        Self::Released,
        Self::Suspended,
        Self::TemporarilyOffline,
        Self::Offline,
    ];

    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Applied => "applied",
            Self::Approved => "approved",
            Self::PreRelease => "pre_release",
            Self::Released => "released",
            Self::Suspended => "suspended",
            Self::TemporarilyOffline => "temporarily_offline",
            Self::Offline => "offline",
        }
    }

    /// Parses the wire name.
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|st| st.as_str() == s)
    }

    /// The states this one may move to. `Approved` is reached from `Applied` only through an
    /// approving review; `Suspended` returns to the state it was suspended from.
    pub fn next(self) -> &'static [State] {
        use State::*;
        match self {
            Applied => &[Approved, Offline],
            Approved => &[PreRelease, Offline],
            PreRelease => &[Released, Approved, Suspended, Offline],
            Released => &[Suspended, TemporarilyOffline, Offline],
            Suspended => &[PreRelease, Released, Offline],
            TemporarilyOffline => &[Released, Offline],
            Offline => &[],
        }
    }

    /// Whether `self -> to` is in the table.
    pub fn can_move_to(self, to: State) -> bool {
        self.next().contains(&to)
    }

    /// Whether access tokens already issued to the application's clients still validate.
    pub fn tokens_valid(self) -> bool {
        !matches!(self, Self::Applied | Self::Suspended | Self::Offline)
    }

    /// Whether the token endpoint may issue new tokens to its clients.
    pub fn issues_tokens(self) -> bool {
        self.tokens_valid()
    }

    /// Whether users may start logging in to it (who exactly is decided by the audience).
    pub fn admits_logins(self) -> bool {
        matches!(self, Self::Approved | Self::PreRelease | Self::Released)
    }

    /// A short reason a client in this state is refused, for error descriptions.
    pub fn refusal(self) -> &'static str {
        match self {
            Self::Applied => "the application has not been approved yet",
            Self::Suspended => "the application is suspended (AY-8.5.3.2)",
            Self::TemporarilyOffline => "the application is temporarily offline for maintenance",
            Self::Offline => "the application is offline; its grants were revoked",
            Self::Approved | Self::PreRelease | Self::Released => "",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // SH-6.2.7, AY-8: the legal transitions, and nothing else.
    #[test]
    fn transition_table() {
        use State::*;
        let legal = [
            (Applied, Approved),
            (Applied, Offline),
            (Approved, PreRelease),
            (Approved, Offline),
            (PreRelease, Released),
            (PreRelease, Approved),
            (PreRelease, Suspended),
            (PreRelease, Offline),
            (Released, Suspended),
            (Released, TemporarilyOffline),
            (Released, Offline),
            (Suspended, PreRelease),
            (Suspended, Released),
            (Suspended, Offline),
            (TemporarilyOffline, Released),
            (TemporarilyOffline, Offline),
        ];
        for from in State::ALL {
            for to in State::ALL {
                assert_eq!(from.can_move_to(to), legal.contains(&(from, to)), "{from:?} -> {to:?}");
            }
        }
        assert!(Offline.next().is_empty(), "offline is final (AY-8.6.3)");
        for s in State::ALL {
            assert_eq!(State::parse(s.as_str()), Some(s));
        }
    }

    // AY-8.5.3.2: a suspended application's tokens stop working; SH-7.3: maintenance keeps them.
    #[test]
    fn what_each_state_allows() {
        assert!(!State::Suspended.tokens_valid() && !State::Offline.tokens_valid());
        assert!(State::TemporarilyOffline.tokens_valid() && !State::TemporarilyOffline.admits_logins());
        assert!(State::Approved.admits_logins() && State::Released.issues_tokens());
    }
}
