//! The client over HTTP, against a one-shot server: it signs requests,
//! accepts only signed answers, maps error envelopes, and the admin client
//! sends its bearer token.

use super::*;

/// A one-request HTTP server answering with `reply(request_head, body)`.
async fn one_shot_server(
    reply: impl FnOnce(&str, &[u8]) -> (u16, Vec<(String, String)>, String) + Send + 'static,
) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let (mut sock, _) = listener.accept().await.unwrap();
        let mut buf = Vec::new();
        let mut chunk = [0u8; 4096];
        let (head, body) = loop {
            let n = sock.read(&mut chunk).await.unwrap();
            buf.extend_from_slice(&chunk[..n]);
            if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                let head = String::from_utf8_lossy(&buf[..end]).to_string();
                let len = head
                    .lines()
                    .find_map(|l| {
                        l.to_ascii_lowercase()
                            .strip_prefix("content-length:")
                            .map(|v| v.trim().parse::<usize>().unwrap())
                    })
                    .unwrap_or(0);
                while buf.len() < end + 4 + len {
                    let n = sock.read(&mut chunk).await.unwrap();
                    buf.extend_from_slice(&chunk[..n]);
                }
                break (head, buf[end + 4..end + 4 + len].to_vec());
            }
            assert!(n > 0, "connection closed early");
        };
        let (status, extra, body) = reply(&head, &body);
        let mut out = format!(
            "HTTP/1.1 {status} X\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n",
            body.len()
        );
        for (k, v) in extra {
            out.push_str(&format!("{k}: {v}\r\n"));
        }
        out.push_str("\r\n");
        out.push_str(&body);
        sock.write_all(out.as_bytes()).await.unwrap();
    });
    format!("http://{addr}")
}

fn signed_reply(body: &str, key: &str) -> Vec<(String, String)> {
    let ts = now();
    let sig = hmac_sha256_hex(key, &format!("{ts}\nrn1\n{body}\n"));
    vec![
        ("Cashdesk-App-Id".into(), APP_ID.into()),
        ("Cashdesk-Timestamp".into(), ts.to_string()),
        ("Cashdesk-Nonce".into(), "rn1".into()),
        ("Cashdesk-Sign-Type".into(), "HMAC-SHA256".into()),
        ("Cashdesk-Signature".into(), sig),
    ]
}

const PAY_RESULT: &str = r#"{"code":1000,"msg":"操作成功","data":{"orderId":"P1","outTradeNo":"T1001","amount":1,"state":"CREATED","resultCode":"NULL","channelId":null,"channelType":null,"mchId":null,"transactionId":null,"payTime":null,"refundedAmount":0,"resultErrorCode":null,"resultErrorMsg":null,"storeId":null,"attach":null},"responseTime":1}"#;

fn client(base: &str) -> Client {
    Client::builder(base, APP_ID, shared(SignType::HmacSha256))
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap()
}

#[tokio::test]
async fn client_signs_requests_and_accepts_a_signed_answer() {
    let base = one_shot_server(|head, body| {
        // The request carries a signature over exactly what was sent.
        let line = head.lines().next().unwrap().to_owned();
        assert!(line.starts_with("GET /api/cashier-desk/out-trade-no/query-pay-result/T1001 "));
        assert!(body.is_empty());
        let get = |name: &str| {
            head.lines()
                .find_map(|l| {
                    let (k, v) = l.split_once(':')?;
                    k.eq_ignore_ascii_case(name).then(|| v.trim().to_owned())
                })
                .unwrap()
        };
        let expected = hmac_sha256_hex(
            APP_KEY,
            &format!(
                "GET\n/api/cashier-desk/out-trade-no/query-pay-result/T1001\n{}\n{}\n\n",
                get("cashdesk-timestamp"),
                get("cashdesk-nonce")
            ),
        );
        assert_eq!(get("cashdesk-signature"), expected);
        assert_eq!(get("cashdesk-app-id"), APP_ID);
        (
            200,
            signed_reply(PAY_RESULT, APP_KEY),
            PAY_RESULT.to_owned(),
        )
    })
    .await;
    let r = client(&base)
        .query_pay_result("T1001", false)
        .await
        .unwrap();
    assert_eq!(r.order_id, "P1");
    assert_eq!(r.result_code, cashdesk_core::ResultCode::Null);
}

#[tokio::test]
async fn client_rejects_a_forged_or_unsigned_success() {
    let base = one_shot_server(|_, _| {
        (
            200,
            signed_reply(PAY_RESULT, "wrong-key"),
            PAY_RESULT.to_owned(),
        )
    })
    .await;
    let err = client(&base)
        .query_pay_result("T1001", false)
        .await
        .unwrap_err();
    assert!(matches!(err, SdkError::BadResponseSignature(_)), "{err}");

    let base = one_shot_server(|_, _| (200, Vec::new(), PAY_RESULT.to_owned())).await;
    let err = client(&base)
        .query_pay_result("T1001", false)
        .await
        .unwrap_err();
    assert!(matches!(err, SdkError::BadResponseSignature(_)), "{err}");
}

#[tokio::test]
async fn client_reports_an_unsigned_401_as_an_api_error() {
    let body = r#"{"code":4014,"msg":"signature does not verify","data":null,"responseTime":1}"#;
    let base = one_shot_server(move |_, _| (401, Vec::new(), body.to_owned())).await;
    match client(&base).query_pay_result("T1001", false).await {
        Err(SdkError::Api { status, code, .. }) => {
            assert_eq!(status, 401);
            assert_eq!(code, 4014);
        }
        other => panic!("expected an API error, got {other:?}"),
    }
}

#[tokio::test]
async fn admin_client_sends_the_bearer_token_and_parses_ids() {
    let base = one_shot_server(|head, body| {
        assert!(head.starts_with("POST /api/admin/channels "));
        assert!(
            head.lines()
                .any(|l| l.eq_ignore_ascii_case("authorization: Bearer op-token")),
            "{head}"
        );
        let v: serde_json::Value = serde_json::from_slice(body).unwrap();
        assert_eq!(v["configId"], "cfg1");
        assert_eq!(v["sceneCode"], "mini");
        assert!(v.get("sort").is_none());
        (
            200,
            Vec::new(),
            r#"{"code":1000,"msg":"操作成功","data":{"channelId":"ch1"},"responseTime":1}"#
                .to_owned(),
        )
    })
    .await;
    let admin = AdminClient::new(base, "op-token").unwrap();
    let created = admin
        .create_channel(&CreateChannelRequest {
            config_id: "cfg1".into(),
            scene_code: "mini".into(),
            channel_name: "WeChat mini".into(),
            sort: None,
        })
        .await
        .unwrap();
    assert_eq!(created.channel_id, "ch1");
}

#[tokio::test]
async fn admin_client_turns_an_error_envelope_into_an_api_error() {
    let base = one_shot_server(|_, _| {
        (
            401,
            Vec::new(),
            r#"{"code":4019,"msg":"admin token missing or wrong","data":null,"responseTime":1}"#
                .to_owned(),
        )
    })
    .await;
    let admin = AdminClient::new(base, "wrong").unwrap();
    match admin.list_apps().await {
        Err(SdkError::Api { status, code, .. }) => assert_eq!((status, code), (401, 4019)),
        other => panic!("expected an API error, got {other:?}"),
    }
}
