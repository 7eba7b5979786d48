//! The pages: the dashboard (`/`), the cache's operations view (`/ops`), and their scripts and
//! styles, built into the binary so the service needs no network and no files at run time.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::{header, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use axum::Json;
use serde::Serialize;

use crate::error::ApiError;
use crate::node::{Node, Peer};

/// (file name, content type, content) of every asset.
const ASSETS: &[(&str, &str, &str)] = &[
    (
        "app.css",
        "text/css; charset=utf-8",
        include_str!("../../assets/app.css"),
    ),
    (
        "common.js",
        "text/javascript; charset=utf-8",
        include_str!("../../assets/common.js"),
    ),
    (
        "capture-errors.js",
        "text/javascript; charset=utf-8",
        include_str!("../../assets/capture-errors.js"),
    ),
    (
        "dashboard.js",
        "text/javascript; charset=utf-8",
        include_str!("../../assets/dashboard.js"),
    ),
    (
        "ops.js",
        "text/javascript; charset=utf-8",
        include_str!("../../assets/ops.js"),
    ),
    (
        "charts.js",
        "text/javascript; charset=utf-8",
        include_str!("../../assets/charts.js"),
    ),
    // uPlot 1.6.32 (https://github.com/leeoniya/uPlot, MIT, © 2022 Leon Sorokin), the files of its
    // npm package's dist/ unchanged, with its licence beside them: the charts' drawing, served
    // from the binary like everything else, so no page needs a CDN or any network.
    (
        "uPlot.iife.min.js",
        "text/javascript; charset=utf-8",
        include_str!("../../assets/vendor/uPlot.iife.min.js"),
    ),
    (
        "uPlot.min.css",
        "text/css; charset=utf-8",
        include_str!("../../assets/vendor/uPlot.min.css"),
    ),
    (
        "uPlot.LICENSE",
        "text/plain; charset=utf-8",
        include_str!("../../assets/vendor/uPlot.LICENSE"),
    ),
];

/// `GET /`: the dashboard.
pub async fn dashboard() -> Html<&'static str> {
    Html(include_str!("../../assets/index.html"))
}

/// `GET /ops`: the cache's own view.
pub async fn ops() -> Html<&'static str> {
    Html(include_str!("../../assets/ops.html"))
}

/// `GET /assets/{file}`.
pub async fn asset(Path(file): Path<String>) -> Result<Response, ApiError> {
    let (_, content_type, body) = ASSETS
        .iter()
        .find(|(name, _, _)| *name == file)
        .ok_or_else(|| {
            ApiError::new(StatusCode::NOT_FOUND, None, format!("no asset {file:?}"))
                .with_valid(ASSETS.iter().map(|(name, _, _)| *name))
        })?;
    // Revalidate on every load: the assets change with the binary, and they are small.
    Ok((
        [
            (header::CONTENT_TYPE, *content_type),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        *body,
    )
        .into_response())
}

/// The answer of `GET /api/nodes`.
#[derive(Debug, Serialize)]
pub struct Nodes {
    /// The node that answered.
    #[serde(rename = "this")]
    pub this: &'static str,
    /// Every node of the process, this one included.
    pub nodes: Vec<Peer>,
}

/// `GET /api/nodes`: this node and its peers.
pub async fn nodes(State(node): State<Arc<Node>>) -> Json<Nodes> {
    Json(Nodes {
        this: node.name,
        nodes: node.peers.clone(),
    })
}
