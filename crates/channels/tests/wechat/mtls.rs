//! `secapi/pay/refund` over mutual TLS: a local HTTPS double that demands a
//! client certificate from its own CA, trusted by the adapter through
//! `caCertPem` (TLS verification is never turned off).

use std::net::SocketAddr;
use std::sync::Arc;

use cashdesk_channels::*;
use cashdesk_core::{ChannelType, Fen, OrderId, RefundId};
use cashdesk_crypto::wxv2::WxSignType;
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use serde_json::json;

use crate::support::*;

struct Pki {
    ca_pem: String,
    server_chain: Vec<CertificateDer<'static>>,
    server_key: PrivateKeyDer<'static>,
    ca_der: CertificateDer<'static>,
    /// A merchant certificate issued by the CA, and its RSA key.
    client_cert_pem: String,
    client_key_pem: String,
}

fn ca(name: &str) -> (CertificateParams, KeyPair, rcgen::Certificate) {
    let key = KeyPair::generate().unwrap();
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.distinguished_name.push(DnType::CommonName, name);
    let cert = params.self_signed(&key).unwrap();
    (params, key, cert)
}

fn client_cert(issuer: &Issuer<'_, KeyPair>) -> (String, String) {
    let rsa = cashdesk_crypto::rsa::RsaPrivateKey::generate_2048().unwrap();
    let key_pem = rsa.to_pkcs8_pem();
    let key = KeyPair::from_pem(&key_pem).unwrap();
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.distinguished_name.push(DnType::CommonName, MCH_ID);
    let cert = params.signed_by(&key, issuer).unwrap();
    (cert.pem(), key_pem)
}

fn pki() -> Pki {
    let (params, ca_key, ca_cert) = ca("sandbox test CA");
    let issuer = Issuer::new(params, ca_key);
    let server_key = KeyPair::generate().unwrap();
    let server = CertificateParams::new(vec!["127.0.0.1".to_owned(), "localhost".to_owned()])
        .unwrap()
        .signed_by(&server_key, &issuer)
        .unwrap();
    let (client_cert_pem, client_key_pem) = client_cert(&issuer);
    Pki {
        ca_pem: ca_cert.pem(),
        ca_der: ca_cert.der().clone(),
        server_chain: vec![server.der().clone()],
        server_key: PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(server_key.serialize_der())),
        client_cert_pem,
        client_key_pem,
    }
}

struct TlsListener {
    tcp: tokio::net::TcpListener,
    acceptor: tokio_rustls::TlsAcceptor,
}

impl axum::serve::Listener for TlsListener {
    type Io = tokio_rustls::server::TlsStream<tokio::net::TcpStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        loop {
            let Ok((tcp, addr)) = self.tcp.accept().await else {
                continue;
            };
            // A failed handshake (no or foreign client certificate) is dropped.
            if let Ok(tls) = self.acceptor.accept(tcp).await {
                return (tls, addr);
            }
        }
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        self.tcp.local_addr()
    }
}

async fn serve_mtls(d: Arc<Double>, pki: &Pki) -> SocketAddr {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut roots = rustls::RootCertStore::empty();
    roots.add(pki.ca_der.clone()).unwrap();
    let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
        Arc::new(roots),
        provider.clone(),
    )
    .build()
    .unwrap();
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_client_cert_verifier(verifier)
        .with_single_cert(pki.server_chain.clone(), pki.server_key.clone_key())
        .unwrap();
    let tcp = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = tcp.local_addr().unwrap();
    let listener = TlsListener {
        tcp,
        acceptor: tokio_rustls::TlsAcceptor::from(Arc::new(config)),
    };
    tokio::spawn(async move {
        let _ = axum::serve(listener, router(d)).await;
    });
    addr
}

fn refund_request() -> RefundRequest {
    RefundRequest {
        order_id: OrderId::generate(),
        refund_id: RefundId::generate(),
        order_amount: Fen::from_stored(100),
        refund_amount: Fen::from_stored(30),
        reason: Some("退货".into()),
        store: None,
    }
}

#[tokio::test]
async fn refund_goes_over_mutual_tls_with_the_merchant_certificate() {
    let pki = pki();
    let d = Double::new(WxSignType::HmacSha256);
    let plain = serve(router(d.clone())).await;
    let tls = serve_mtls(d.clone(), &pki).await;
    let mut creds = json!({
        "appId": APP_ID, "apiKey": API_KEY, "signType": "HMAC-SHA256",
        "certPem": pki.client_cert_pem, "keyPem": pki.client_key_pem,
        "caCertPem": pki.ca_pem,
        "refundBaseUrl": format!("https://127.0.0.1:{}/wx", tls.port()),
    });
    validate_credentials(ChannelType::WxPay, "v2", &creds).unwrap();
    let base = format!("http://{plain}/wx");
    let ch = build_channel(
        ChannelType::WxPay,
        "v2",
        MCH_ID,
        &creds,
        Some(&base),
        &env(),
    )
    .unwrap();
    let req = refund_request();
    let st = ch.refund(&req).await.unwrap();
    assert_eq!(st.outcome, RefundOutcome::Processing);
    assert_eq!(st.refund_amount, Some(Fen::from_stored(30)));
    assert_eq!(
        st.channel_refund_id.as_deref(),
        Some("50000000012024010212345678901")
    );
    let sent = cashdesk_channels::xml::parse_flat(&d.last().body).unwrap();
    assert_eq!(d.last().path_and_query, "/wx/secapi/pay/refund");
    assert_eq!(sent["out_refund_no"], req.refund_id.as_str());
    assert_eq!(sent["refund_fee"], "30");
    assert_eq!(sent["total_fee"], "100");
    assert_eq!(sent["notify_url"], NOTIFY_URL);
    // Other calls keep using the base URL (and never present the certificate).
    ch.close(&CloseRequest {
        order_id: req.order_id.clone(),
        store: None,
    })
    .await
    .unwrap();
    assert_eq!(d.last().path_and_query, "/wx/pay/closeorder");

    // Without the CA the server certificate is not trusted: verification stays on.
    let mut untrusted = creds.clone();
    untrusted.as_object_mut().unwrap().remove("caCertPem");
    let ch = build_channel(
        ChannelType::WxPay,
        "v2",
        MCH_ID,
        &untrusted,
        Some(&base),
        &env(),
    )
    .unwrap();
    let before = d.count();
    let e = ch.refund(&refund_request()).await.unwrap_err();
    assert_eq!(e.kind(), ChannelErrorKind::Config);
    assert!(e.message().contains("UnknownIssuer"), "{e}");
    assert_eq!(d.count(), before);

    // A certificate from another CA is refused by the server.
    let (params, key, _) = ca("someone else");
    let (cert, key_pem) = client_cert(&Issuer::new(params, key));
    creds["certPem"] = json!(cert);
    creds["keyPem"] = json!(key_pem);
    let ch = build_channel(
        ChannelType::WxPay,
        "v2",
        MCH_ID,
        &creds,
        Some(&base),
        &env(),
    )
    .unwrap();
    let e = ch.refund(&refund_request()).await.unwrap_err();
    assert_eq!(e.kind(), ChannelErrorKind::Config);
    assert!(e.message().contains("UnknownCA"), "{e}");
    assert_eq!(d.count(), before);
}
