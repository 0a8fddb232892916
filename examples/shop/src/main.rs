//! `cashdesk-shop`: flags and environment in, the shop out (src/lib.rs).

use clap::Parser as _;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .init();
    let config = cashdesk_shop::ShopConfig::parse();
    let shop = cashdesk_shop::Shop::build(config).await?;
    println!("shop listening on {}", shop.url());
    shop.run_until_stopped(async {
        let _ = tokio::signal::ctrl_c().await;
    })
    .await
}
