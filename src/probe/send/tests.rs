use super::*;

#[test]
fn xtext_escapes_plus_equals_and_controls() {
    assert_eq!(xtext("seed1@seed.test"), "seed1@seed.test");
    assert_eq!(xtext("a+b=c d"), "a+2Bb+3Dc+20d");
}

#[test]
fn dsn_is_read_from_the_ehlo_keywords() {
    use lettre::transport::smtp::response::{Category, Code, Detail, Severity};
    let reply = |lines: &[&str]| {
        Response::new(
            Code::new(
                Severity::PositiveCompletion,
                Category::MailSystem,
                Detail::Zero,
            ),
            lines.iter().map(|l| l.to_string()).collect(),
        )
    };
    assert!(ehlo_offers(
        &reply(&["mail.sender.test", "PIPELINING", "DSN", "SMTPUTF8"]),
        "DSN"
    ));
    assert!(!ehlo_offers(
        &reply(&["mail.sender.test", "PIPELINING", "8BITMIME"]),
        "DSN"
    ));
    // The greeting line names the host, not an extension.
    assert!(!ehlo_offers(&reply(&["DSN"]), "DSN"));
    assert_eq!(
        ehlo_auth_mechanisms(&reply(&[
            "mail.sender.test",
            "PIPELINING",
            "AUTH OAUTHBEARER XOAUTH2",
            "AUTH=PLAIN",
            "AUTHX FOO",
        ])),
        vec!["OAUTHBEARER", "XOAUTH2", "PLAIN"]
    );
    assert!(ehlo_auth_mechanisms(&reply(&["AUTH PLAIN"])).is_empty());
}

#[test]
fn auth_lines_carry_the_base64_initial_response() {
    let line = AuthLine::initial(
        SaslMechanism::XOAuth2,
        &Secret::new("user=u\x01auth=Bearer t\x01\x01"),
    );
    assert_eq!(
        line.to_string(),
        "AUTH XOAUTH2 dXNlcj11AWF1dGg9QmVhcmVyIHQBAQ==\r\n"
    );
    assert_eq!(
        AuthLine::ack(SaslMechanism::OAuthBearer).to_string(),
        "AQ==\r\n"
    );
    assert_eq!(AuthLine::ack(SaslMechanism::XOAuth2).to_string(), "\r\n");
}

#[test]
fn queue_ids() {
    assert_eq!(
        queue_id("2.0.0 Ok: queued as DE304D8448").as_deref(),
        Some("DE304D8448")
    );
    assert_eq!(
        queue_id("OK id=1rF2aB-000Abc-3x").as_deref(),
        Some("1rF2aB-000Abc-3x")
    );
    assert_eq!(queue_id("2.0.0 OK  1700000000 x"), None);
}

/// Kept sessions, against a plain SMTP sink of our own (RFC 5321 §4.3.2 replies): a real
/// Postfix cannot be told to drop one session at a chosen moment. The lab's Postfix carries
/// the same round in `tests/lab/probe.rs`.
mod sessions {
    use super::*;
    use std::sync::Mutex as StdMutex;
    use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
    use tokio::net::TcpListener;

    /// How the sink misbehaves, if at all.
    #[derive(Clone, Copy, Default)]
    struct Faults {
        /// Ends every session (421, then closes) after this many accepted messages, as a server
        /// whose idle timeout ran out while the session was kept.
        close_after: Option<usize>,
        /// Refuses the RCPT of this message (counted over every session, from 1) with a 550.
        refuse_rcpt_of: Option<usize>,
    }

    /// Every session's commands, in order.
    type Sessions = Arc<StdMutex<Vec<Vec<String>>>>;

    async fn sink(faults: Faults) -> (u16, Sessions) {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let sessions: Sessions = Arc::default();
        let record = sessions.clone();
        let messages = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        tokio::spawn(async move {
            while let Ok((tcp, _)) = listener.accept().await {
                let index = {
                    let mut s = record.lock().expect("lock");
                    s.push(Vec::new());
                    s.len() - 1
                };
                let (record, messages) = (record.clone(), messages.clone());
                tokio::spawn(async move {
                    let _ = session(tcp, faults, index, &record, &messages).await;
                });
            }
        });
        (port, sessions)
    }

    async fn session(
        tcp: tokio::net::TcpStream,
        faults: Faults,
        index: usize,
        record: &Sessions,
        messages: &std::sync::atomic::AtomicUsize,
    ) -> std::io::Result<()> {
        let (read, mut write) = tcp.into_split();
        let mut lines = BufReader::new(read).lines();
        write.write_all(b"220 sink.test ESMTP\r\n").await?;
        let mut here = 0;
        let mut number = 0;
        while let Some(line) = lines.next_line().await? {
            record.lock().expect("lock")[index].push(line.clone());
            let verb = line
                .split_whitespace()
                .next()
                .unwrap_or("")
                .to_ascii_uppercase();
            match verb.as_str() {
                "EHLO" => {
                    write
                        .write_all(b"250-sink.test\r\n250-8BITMIME\r\n250 DSN\r\n")
                        .await?
                }
                "MAIL" => {
                    number = messages.fetch_add(1, std::sync::atomic::Ordering::SeqCst) + 1;
                    write.write_all(b"250 2.1.0 Ok\r\n").await?
                }
                "RCPT" if faults.refuse_rcpt_of == Some(number) => {
                    write
                        .write_all(b"550 5.1.1 <seed@example.com>: Recipient address rejected\r\n")
                        .await?
                }
                "RCPT" | "RSET" | "NOOP" => write.write_all(b"250 2.0.0 Ok\r\n").await?,
                "DATA" => {
                    write
                        .write_all(b"354 End data with <CR><LF>.<CR><LF>\r\n")
                        .await?;
                    while let Some(l) = lines.next_line().await? {
                        if l == "." {
                            break;
                        }
                    }
                    here += 1;
                    let reply = format!("250 2.0.0 Ok: queued as Q{number}\r\n");
                    write.write_all(reply.as_bytes()).await?;
                    if faults.close_after == Some(here) {
                        write
                            .write_all(b"421 4.4.2 sink.test Error: timeout exceeded\r\n")
                            .await?;
                        return Ok(());
                    }
                }
                "QUIT" => {
                    write.write_all(b"221 2.0.0 Bye\r\n").await?;
                    return Ok(());
                }
                _ => {
                    write
                        .write_all(b"502 5.5.2 Error: command not recognized\r\n")
                        .await?
                }
            }
        }
        Ok(())
    }

    fn sender(port: u16, per_session: u32) -> Sender {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/config");
        let text = format!(
            "[probe]\ntoken_key_file = \"token.key\"\n\
             [routes.r]\nhost = \"127.0.0.1\"\nport = {port}\nfrom = \"p@example.com\"\n\
             tls = \"none\"\ntimeout = \"5s\"\nprobes_per_session = {per_session}\n\
             [seeds.s]\naddress = \"seed@example.com\"\nhost = \"127.0.0.1\"\n\
             password_file = \"password\"\n"
        );
        let config = crate::config::parse(&text, &std::path::Path::new(dir).join("x.toml"))
            .unwrap_or_else(|e| panic!("{e}"));
        Sender::new(&config.routes[0]).expect("sender")
    }

    fn message(n: usize) -> ProbeMessage {
        ProbeMessage {
            probe_id: format!("p{n}"),
            message_id: format!("<p{n}@example.com>"),
            envelope_id: format!("mc1.p{n}.00"),
            envelope_from: "p@example.com".to_string(),
            recipient: "seed@example.com".to_string(),
            bytes: format!("Subject: probe {n}\r\n\r\nbody\r\n").into_bytes(),
        }
    }

    fn commands(sessions: &Sessions, verb: &str) -> Vec<usize> {
        sessions
            .lock()
            .expect("lock")
            .iter()
            .map(|s| s.iter().filter(|c| c.starts_with(verb)).count())
            .collect()
    }

    /// Sends `n` probes one after another; their sessions.
    async fn send_all(sender: &Sender, n: usize) -> Vec<SmtpSession> {
        let mut out = Vec::new();
        for i in 1..=n {
            let sent = sender.send(&message(i)).await.expect("accepted");
            assert_eq!(sent.queue_id, Some(format!("Q{i}")));
            out.push(sent.session);
        }
        out
    }

    #[tokio::test]
    async fn probes_of_a_round_follow_one_another_over_one_session() {
        let (port, sessions) = sink(Faults::default()).await;
        let s = sender(port, 20);
        let used = send_all(&s, 3).await;
        assert_eq!(
            used,
            [SmtpSession::Fresh, SmtpSession::Reused, SmtpSession::Reused]
        );
        assert_eq!(commands(&sessions, "MAIL"), [3]);
        assert_eq!(commands(&sessions, "DATA"), [3]);
        // Every MAIL carries the DSN parameters of its own probe, kept sessions too.
        let mails: Vec<String> = sessions.lock().expect("lock")[0]
            .iter()
            .filter(|c| c.starts_with("MAIL"))
            .cloned()
            .collect();
        for (i, mail) in mails.iter().enumerate() {
            assert!(mail.contains(&format!("ENVID=mc1.p{}.00", i + 1)), "{mail}");
            assert!(mail.contains("RET=HDRS"), "{mail}");
        }
    }

    #[tokio::test]
    async fn a_session_carries_at_most_probes_per_session_then_quits() {
        let (port, sessions) = sink(Faults::default()).await;
        let s = sender(port, 2);
        let used = send_all(&s, 5).await;
        assert_eq!(
            used,
            [
                SmtpSession::Fresh,
                SmtpSession::Reused,
                SmtpSession::Fresh,
                SmtpSession::Reused,
                SmtpSession::Fresh
            ]
        );
        assert_eq!(commands(&sessions, "DATA"), [2, 2, 1]);
        // The full ones end with QUIT once their last message is accepted.
        tokio::time::sleep(Duration::from_millis(200)).await;
        assert_eq!(commands(&sessions, "QUIT")[..2], [1, 1]);
    }

    #[tokio::test]
    async fn one_probe_per_session_gives_each_its_own() {
        let (port, sessions) = sink(Faults::default()).await;
        let s = sender(port, 1);
        let used = send_all(&s, 3).await;
        assert_eq!(used, [SmtpSession::Fresh; 3]);
        assert_eq!(commands(&sessions, "DATA"), [1, 1, 1]);
    }

    #[tokio::test]
    async fn a_session_the_server_ended_is_replaced_and_nothing_is_sent_twice() {
        let (port, sessions) = sink(Faults {
            close_after: Some(1),
            ..Faults::default()
        })
        .await;
        let s = sender(port, 20);
        let used = send_all(&s, 2).await;
        assert_eq!(used, [SmtpSession::Fresh, SmtpSession::Fresh]);
        // Each message went over the wire once, each on a session of its own.
        assert_eq!(commands(&sessions, "DATA"), [1, 1]);
    }

    #[tokio::test]
    async fn a_refusal_on_a_kept_session_is_the_probes_answer_not_retried() {
        let (port, sessions) = sink(Faults {
            refuse_rcpt_of: Some(2),
            ..Faults::default()
        })
        .await;
        let s = sender(port, 20);
        send_all(&s, 1).await;
        let refused = s.send(&message(2)).await.expect_err("refused");
        assert!(
            matches!(
                refused,
                SendError::Permanent {
                    code: Some(550),
                    ..
                }
            ),
            "{refused:?}"
        );
        // One session: the refused probe was not sent again on a fresh one.
        assert_eq!(commands(&sessions, "MAIL"), [2]);
        assert_eq!(commands(&sessions, "DATA"), [1]);
    }

    #[tokio::test]
    async fn an_idle_session_is_closed_and_the_next_round_starts_fresh() {
        let (port, sessions) = sink(Faults::default()).await;
        let s = sender(port, 20);
        send_all(&s, 1).await;
        tokio::time::sleep(SESSION_IDLE + Duration::from_millis(300)).await;
        // Closed with QUIT once idle, without waiting for the next probe.
        assert_eq!(commands(&sessions, "QUIT"), [1]);
        let sent = s.send(&message(2)).await.expect("accepted");
        assert_eq!(sent.session, SmtpSession::Fresh);
        assert_eq!(commands(&sessions, "DATA"), [1, 1]);
    }
}
