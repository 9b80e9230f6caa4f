//! Bad input at the identity endpoints (issue 11's proof; GB-6.9.3): malformed ID numbers of
//! every type, over-long and control-character fields at `/verify`, forged picks at `/act`,
//! garbage at the account page's actions, code guessing and replay at `/password/reset`, and
//! malformed JM-B calls. Every answer is a clear 4xx (or the form again), never a 5xx, never a
//! billed call for a malformed number, and nothing stored changes.

use base64::Engine as _;
use reqwest::StatusCode;
use serde_json::{Value, json};
use tongzheng::identity::AssuranceLevel;
use tongzheng::users;

use crate::signup::{browser, csrf, post, register, send_code};
use crate::support::flow::{self, hidden};
use crate::support::realname::RealName;
use crate::support::server::{Backend, PASSWORD, TestServer, USER};

per_backend!(
    verify_refuses_malformed_numbers_and_fields_uncharged,
    act_and_account_actions_refuse_garbage,
    reset_codes_cannot_be_guessed_or_replayed,
    legacy_login_refuses_malformed_calls,
);

/// Fails unless the answer is a client error (or the form shown again), never a server error.
fn client_error(status: StatusCode, what: &str) {
    assert!(status.as_u16() < 500, "{what}: answered {status}");
    assert_ne!(status, StatusCode::SEE_OTHER, "{what}: accepted");
}

// GB-6.4a, HL-6.1, SH-8.2, GB-6.9.3: malformed numbers of every document type, unknown types,
// over-long and control-character fields are refused on the form before any call to the
// real-name service (no charge), and the person stays unverified.
async fn verify_refuses_malformed_numbers_and_fields_uncharged(b: Backend) {
    let rn = RealName::start().await;
    let s = TestServer::start_with(b, &rn.overlay()).await;
    flow::web_code(&s, "openid").await;
    let html = s.browser.get(s.url("/verify?next=/account")).send().await.unwrap().text().await.unwrap();
    let token = hidden(&html, "csrf");
    let long = "9".repeat(5000);
    let long_name = "张".repeat(3000);
    let cases: Vec<(&str, &str, &str)> = vec![
        // GB 11643: wrong check digit, wrong length, impossible birth date, letters.
        ("resident_id_card", "张三", "110105194912310021"),
        ("resident_id_card", "张三", "11010519491231002"),
        ("resident_id_card", "张三", "110105194913310020"),
        ("resident_id_card", "张三", "ABCDEFGHIJKLMNOPQR"),
        ("resident_id_card", "张三", "１１０１０５１９４９１２３１００２Ｘ"),
        ("resident_id_card", "张三", "11010519491231002X\u{0}"),
        ("resident_id_card", "张三", &long),
        ("passport", "张三", "1"),
        ("passport", "张三", "E1234567890123456789"),
        ("hk_macao_permit", "张三", "X12"),
        ("taiwan_permit", "张三", "ABCDEFGH"),
        ("spaceship", "张三", "11010519491231002X"),
        ("", "张三", "11010519491231002X"),
        ("resident_id_card", "", "11010519491231002X"),
        ("resident_id_card", &long_name, "11010519491231002X"),
        ("resident_id_card", "张\u{7}三", "11010519491231002X"),
    ];
    for (id_type, name, number) in &cases {
        let form = [
            ("next", "/account"),
            ("csrf", token.as_str()),
            ("name", name),
            ("id_type", id_type),
            ("id_number", number),
            ("decision", "verify"),
        ];
        let r = s.browser.post(s.url("/verify")).form(&form).send().await.unwrap();
        let what = format!("{id_type} {:.40} {:.40}", name, number);
        client_error(r.status(), &what);
        let page = r.text().await.unwrap();
        assert!(!page.contains(number) || number.len() < 5 || number.contains('\u{0}'), "{what}: echoed");
    }
    // Fields missing altogether, a duplicate field, a body that is not a form.
    let r =
        s.browser.post(s.url("/verify")).form(&[("next", "/account"), ("csrf", token.as_str())]).send().await.unwrap();
    client_error(r.status(), "no fields");
    let r = s.browser.post(s.url("/verify")).body("next=/account&csrf=x&next=/b").send().await.unwrap();
    client_error(r.status(), "not a form");
    let r = s
        .browser
        .post(s.url("/verify"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!("next=/account&csrf={token}&name=%FF%FE&id_type=resident_id_card&id_number=%00%01"))
        .send()
        .await
        .unwrap();
    client_error(r.status(), "invalid UTF-8");
    assert_eq!(rn.total_calls(), 0, "GB-6.4a: a malformed number never costs a call");
    // The control: the same form with a well-formed number does reach the service.
    let form = [
        ("next", "/account"),
        ("csrf", token.as_str()),
        ("name", "张三"),
        ("id_type", "resident_id_card"),
        ("id_number", "11010519491231002X"),
        ("decision", "verify"),
    ];
    let r = s.browser.post(s.url("/verify")).form(&form).send().await.unwrap();
    client_error(r.status(), "no record at the service");
    assert_eq!(rn.total_calls(), 1, "the well-formed number was asked about");
    let user = users::by_username(&s.state.store, USER).await.unwrap().unwrap();
    assert!(user.level() < AssuranceLevel::RealName, "still unverified");
    assert!(user.verification.is_none());
}

// HL-5.1, SH-8.2: /act without a chooser, with a forged form or a made-up legal person, and
// the account page's actions with garbage, forged or missing fields: 4xx pages or the page
// again, never a 5xx; nothing ends that was not asked for.
async fn act_and_account_actions_refuse_garbage(b: Backend) {
    let s = TestServer::start(b).await;
    let long = "x".repeat(10_000);
    for form in [
        vec![],
        vec![("req", "nope"), ("csrf", "nope"), ("legal_person", "nope")],
        vec![("req", long.as_str()), ("csrf", long.as_str()), ("legal_person", long.as_str())],
    ] {
        let r = s.browser.post(s.url("/act")).form(&form).send().await.unwrap();
        client_error(r.status(), "/act");
    }
    // Signed in: the account page's forms with garbage.
    flow::web_code(&s, "openid").await;
    let page = s.browser.get(s.url("/account")).send().await.unwrap().text().await.unwrap();
    let token = hidden(&page, "csrf");
    let posts: Vec<(&str, Vec<(&str, &str)>)> = vec![
        ("/account/sessions/end", vec![("csrf", token.as_str()), ("sid", long.as_str())]),
        ("/account/sessions/end", vec![("csrf", token.as_str())]),
        ("/account/sessions/end", vec![("sid", "x")]),
        ("/account/consents/revoke", vec![("csrf", token.as_str()), ("client_id", long.as_str())]),
        ("/account/consents/revoke", vec![("csrf", token.as_str()), ("client_id", "")]),
        ("/account/consents/revoke", vec![("csrf", "forged"), ("client_id", "demo-web")]),
        ("/account/password", vec![("csrf", token.as_str()), ("current", long.as_str()), ("password", long.as_str())]),
        ("/account/password", vec![("csrf", token.as_str())]),
    ];
    for (path, form) in posts {
        let r = s.browser.post(s.url(path)).form(&form).send().await.unwrap();
        assert!(r.status().as_u16() < 500, "{path} {:?}: {}", form.iter().map(|f| f.0).collect::<Vec<_>>(), r.status());
    }
    // The session survived all of it, and the password is the old one.
    assert_eq!(s.browser.get(s.url("/account")).send().await.unwrap().status(), StatusCode::OK);
    let user = users::by_username(&s.state.store, USER).await.unwrap().unwrap();
    assert!(
        s.state.passwords.verify(tongzheng::crypto::Secret(PASSWORD.into()), Some(user.password_hash)).await.unwrap()
    );
}

// SH-8.2, GB-6.4a: a reset code is voided by guessing (max_tries), cannot be replayed, and a
// registration code never resets a password; a malformed phone or code is a 4xx. The
// password is unchanged by every refusal.
async fn reset_codes_cannot_be_guessed_or_replayed(b: Backend) {
    let (s, o) = crate::signup::start(b, "").await;
    register(&s, &o, "13800138000", "reset.target").await;
    s.clock.advance(61);
    let br = browser();
    let token = csrf(&s, &br, "/password/reset").await;
    let reset = |code: String, phone: &'static str| {
        let (s, br, token) = (&s, &br, token.clone());
        async move {
            post(
                s,
                br,
                "/password/reset",
                &[
                    ("csrf", &token),
                    ("action", "reset"),
                    ("phone", phone),
                    ("code", &code),
                    ("password", "a-new-password-1"),
                ],
            )
            .await
        }
    };
    // A registration code of another phone is no reset code.
    let other = browser();
    let t = csrf(&s, &other, "/signup").await;
    let signup_code = send_code(&s, &o, &other, &t, "13900139000").await;
    client_error(reset(signup_code, "13900139000").await.status(), "a registration code");
    // Malformed phones and codes.
    for (phone, code) in
        [("12", "123456"), ("1380013800０", "123456"), ("13800138000", "12"), ("13800138000", "１２３４５６")]
    {
        let r = post(
            &s,
            &br,
            "/password/reset",
            &[
                ("csrf", &token),
                ("action", "reset"),
                ("phone", phone),
                ("code", code),
                ("password", "a-new-password-1"),
            ],
        )
        .await;
        client_error(r.status(), &format!("{phone} {code}"));
    }
    let long = "1".repeat(5000);
    let r = post(&s, &br, "/password/reset", &[("csrf", &token), ("action", "send_code"), ("phone", &long)]).await;
    client_error(r.status(), "long phone");
    // Guessing voids the code.
    let r =
        post(&s, &br, "/password/reset", &[("csrf", &token), ("action", "send_code"), ("phone", "13800138000")]).await;
    assert_eq!(r.status(), StatusCode::OK);
    let code = o.last_code("+8613800138000");
    let wrong = if code == "000000" { "000001" } else { "000000" };
    for _ in 0..5 {
        client_error(reset(wrong.to_owned(), "13800138000").await.status(), "a wrong code");
    }
    client_error(reset(code, "13800138000").await.status(), "the right code after five guesses");
    // A fresh code works once; the replay is refused.
    s.clock.advance(61);
    let r =
        post(&s, &br, "/password/reset", &[("csrf", &token), ("action", "send_code"), ("phone", "13800138000")]).await;
    assert_eq!(r.status(), StatusCode::OK);
    let code = o.last_code("+8613800138000");
    assert_eq!(reset(code.clone(), "13800138000").await.status(), StatusCode::OK);
    client_error(reset(code, "13800138000").await.status(), "a replayed code");
    let u = users::by_username(&s.state.store, "reset.target").await.unwrap().unwrap();
    let pw = |p: &str| tongzheng::crypto::Secret(p.to_owned());
    assert!(s.state.passwords.verify(pw("a-new-password-1"), Some(u.password_hash)).await.unwrap());
}

// JM-B, GB-6.9.3: malformed legacy calls (no body, JSON of the wrong shape, over-long or
// non-UTF-8 credentials, a form without a password) get the JM-B failure shape with a 4xx.
async fn legacy_login_refuses_malformed_calls(b: Backend) {
    let s = TestServer::start(b).await;
    let admin = flow::admin_token(&s).await;
    let body = json!({"client_id": "legacy-bad", "redirect_uris": [], "grant_types": ["client_credentials"],
                      "scope": "openid", "legacy_login": true});
    let r = s.http.post(s.url("/admin/v1/clients")).bearer_auth(&admin).json(&body).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    let secret = r.json::<Value>().await.unwrap()["client_secret"].as_str().unwrap().to_owned();
    let b64 = |bytes: &[u8]| base64::engine::general_purpose::STANDARD.encode(bytes);
    let long = "u".repeat(10_000);
    let (pw, bad_utf8, huge) = (b64(PASSWORD.as_bytes()), b64(&[0xff, 0xfe, 0x00]), b64(&[b'p'; 6000]));
    let calls: Vec<(&str, String)> = vec![
        ("application/json", String::new()),
        ("application/json", "[1,2,3]".into()),
        ("application/json", json!({"username": 5, "password": true}).to_string()),
        ("application/json", json!({"username": USER}).to_string()),
        ("application/json", json!({"username": long, "password": pw}).to_string()),
        ("application/json", json!({"username": USER, "password": bad_utf8}).to_string()),
        ("application/json", json!({"username": USER, "password": huge}).to_string()),
        ("application/x-www-form-urlencoded", format!("username={USER}")),
        ("application/x-www-form-urlencoded", format!("username={USER}&password=%FF%00")),
        ("text/plain", "hello".into()),
    ];
    for (ctype, body) in calls {
        let r = s
            .http
            .post(s.url("/api/auth"))
            .basic_auth("legacy-bad", Some(&secret))
            .header("content-type", ctype)
            .body(body.clone())
            .send()
            .await
            .unwrap();
        let status = r.status();
        let v: Value = r.json().await.unwrap_or(Value::Null);
        let what = format!("{ctype} {body:.60}");
        assert!(status.is_client_error(), "{what}: {status}");
        assert_eq!((v["code"].clone(), v["data"].clone()), (json!(1), Value::Null), "{what}: {v}");
    }
}
