//! The bare handlers `serve` measures serve against, each in its own process: the same
//! request decoded and the same arithmetic (the worked example's model), with none of the
//! service runtime (auth, limits, timeouts, metrics, tracing, the model catalog).

use crate::INFER_PATH;
use logitflow_core::logistic::sigmoid;
use logitflow_kit::wire::{InferOutput, InferRequest, InferResponse};
use logitflow_serve::grpc::proto::grpc_inference_service_server::{
    GrpcInferenceService, GrpcInferenceServiceServer,
};
use logitflow_serve::grpc::proto::{self, model_infer_response::InferOutputTensor};
use tonic::{Request, Response, Status};

/// The limit: decode the same request, the same arithmetic, no middleware, no auth, no catalog.
pub(crate) async fn bare_server() -> anyhow::Result<()> {
    use axum::routing::post;
    async fn infer(axum::Json(request): axum::Json<InferRequest>) -> axum::Json<InferResponse> {
        // The same typed decoding as serve's (one buffer from the JSON), then the arithmetic.
        let x = request.inputs.into_iter().next().and_then(|t| t.data.numbers().ok());
        let data: Vec<f64> =
            x.unwrap_or_default().into_iter().map(|v| sigmoid(-10.0 + 0.2 * v)).collect();
        axum::Json(InferResponse {
            model_name: "admissions".into(),
            model_version: "1".into(),
            id: request.id,
            outputs: vec![InferOutput {
                name: "probability".into(),
                shape: vec![data.len(), 1],
                datatype: logitflow_kit::tensor::Datatype::Fp64,
                data: logitflow_kit::wire::OutputData::Numbers(data),
                parameters: None,
            }],
        })
    }
    let app = axum::Router::new().route(INFER_PATH, post(infer));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    println!(
        "{}",
        serde_json::json!({"event": "listening", "service": "bare", "addr": listener.local_addr()?.to_string()})
    );
    axum::serve(listener, app).with_graceful_shutdown(logitflow_kit::shutdown_signal()).await?;
    Ok(())
}

/// The limit over gRPC: tonic's generated service, decoding the same raw FP64 contents and
/// doing the same arithmetic, with no catalog, no token and no statistics.
/// The bare gRPC handler: `ModelInfer` on raw FP64 contents, the worked example's arithmetic.
struct Bare;
/// Every route but inference.
fn unimplemented<T>() -> Result<Response<T>, Status> {
    Err(Status::unimplemented("the bare handler only infers"))
}
#[tonic::async_trait]
impl GrpcInferenceService for Bare {
    async fn model_infer(
        &self,
        request: Request<proto::ModelInferRequest>,
    ) -> Result<Response<proto::ModelInferResponse>, Status> {
        let r = request.into_inner();
        let raw =
            r.raw_input_contents.first().ok_or_else(|| Status::invalid_argument("no raw input"))?;
        let mut out = Vec::with_capacity(raw.len());
        for bytes in raw.chunks_exact(8) {
            let mut b = [0u8; 8];
            b.copy_from_slice(bytes);
            out.extend_from_slice(&sigmoid(-10.0 + 0.2 * f64::from_le_bytes(b)).to_le_bytes());
        }
        let rows = (out.len() / 8) as i64;
        Ok(Response::new(proto::ModelInferResponse {
            model_name: r.model_name,
            model_version: "1".into(),
            id: r.id,
            parameters: Default::default(),
            outputs: vec![InferOutputTensor {
                name: "probability".into(),
                datatype: "FP64".into(),
                shape: vec![rows, 1],
                parameters: Default::default(),
                contents: None,
            }],
            raw_output_contents: vec![out],
        }))
    }
    async fn server_live(
        &self,
        _: Request<proto::ServerLiveRequest>,
    ) -> Result<Response<proto::ServerLiveResponse>, Status> {
        unimplemented()
    }
    async fn server_ready(
        &self,
        _: Request<proto::ServerReadyRequest>,
    ) -> Result<Response<proto::ServerReadyResponse>, Status> {
        unimplemented()
    }
    async fn model_ready(
        &self,
        _: Request<proto::ModelReadyRequest>,
    ) -> Result<Response<proto::ModelReadyResponse>, Status> {
        unimplemented()
    }
    async fn server_metadata(
        &self,
        _: Request<proto::ServerMetadataRequest>,
    ) -> Result<Response<proto::ServerMetadataResponse>, Status> {
        unimplemented()
    }
    async fn model_metadata(
        &self,
        _: Request<proto::ModelMetadataRequest>,
    ) -> Result<Response<proto::ModelMetadataResponse>, Status> {
        unimplemented()
    }
    async fn model_statistics(
        &self,
        _: Request<proto::ModelStatisticsRequest>,
    ) -> Result<Response<proto::ModelStatisticsResponse>, Status> {
        unimplemented()
    }
    async fn repository_index(
        &self,
        _: Request<proto::RepositoryIndexRequest>,
    ) -> Result<Response<proto::RepositoryIndexResponse>, Status> {
        unimplemented()
    }
    async fn repository_model_load(
        &self,
        _: Request<proto::RepositoryModelLoadRequest>,
    ) -> Result<Response<proto::RepositoryModelLoadResponse>, Status> {
        unimplemented()
    }
}

/// The bare tonic handler, on a port of its own, its address printed as a service's is.
pub(crate) async fn bare_grpc_server() -> anyhow::Result<()> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    println!(
        "{}",
        serde_json::json!({"event": "listening", "service": "bare-grpc", "addr": listener.local_addr()?.to_string()})
    );
    tonic::transport::Server::builder()
        .add_service(GrpcInferenceServiceServer::new(Bare))
        .serve_with_incoming_shutdown(
            tokio_stream::wrappers::TcpListenerStream::new(listener),
            logitflow_kit::shutdown_signal(),
        )
        .await?;
    Ok(())
}
