//! serve over gRPC: `inference.GRPCInferenceService` from the Open Inference Protocol's
//! `open_inference_grpc.proto` (KServe's; Triton's service of the same name shares its messages
//! and field numbers, so `tritonclient.grpc` speaks to it too), generated with protox and
//! tonic-prost-build at build time. Three of Triton's calls are added to it, with Triton's
//! messages: `ModelStatistics`, `RepositoryIndex` and `RepositoryModelLoad`, as serve answers
//! them over HTTP.
//!
//! It answers from the same catalog as HTTP — the same versions, aliases and zero-failure
//! swaps — and decodes tensors through the same code: `contents` (typed values) or
//! `raw_input_contents` (little-endian bytes, as the binary extension over HTTP). Outputs go
//! back as `raw_output_contents`, as Triton sends them. With a token, every call needs
//! `authorization: Bearer <token>` in its metadata.

pub(crate) mod codec;

use super::inputs::{element_count, invalid};
use super::outputs::{self, Wanted};
use super::{AppState, decode_inputs, served_in};
use logitflow_core::model::Model;
use logitflow_kit::ApiError;
use logitflow_kit::tensor::{Datatype, TensorData};
use logitflow_kit::wire::InferInput;
use std::sync::Arc;
use tonic::{Request, Response, Status};

#[allow(clippy::all, missing_docs, unreachable_pub)]
pub mod proto {
    tonic::include_proto!("inference");
}

use proto::grpc_inference_service_server::{GrpcInferenceService, GrpcInferenceServiceServer};

/// The gRPC service, over serve's state.
pub struct Grpc {
    state: Arc<AppState>,
}

/// A service error as a gRPC status with the words HTTP would answer (an internal error's
/// detail logged, the client told its request id).
fn status(e: ApiError) -> Status {
    let message = e.public().error;
    match e.status().as_u16() {
        400 | 422 => Status::invalid_argument(message),
        401 => Status::unauthenticated(message),
        404 => Status::not_found(message),
        413 => Status::resource_exhausted(message),
        503 => Status::unavailable(message),
        _ => Status::internal(message),
    }
}

/// A tensor's typed `contents` as one buffer: the first field that holds values, whatever
/// the datatype says (a client that sends FP32 values for an FP64 tensor is answered, as over
/// JSON). Text that is not UTF-8 is read with replacement characters.
fn contents_data(c: proto::InferTensorContents) -> TensorData {
    if !c.fp64_contents.is_empty() {
        TensorData::Fp64(c.fp64_contents)
    } else if !c.fp32_contents.is_empty() {
        TensorData::Fp32(c.fp32_contents)
    } else if !c.int64_contents.is_empty() {
        TensorData::Int64(c.int64_contents)
    } else if !c.int_contents.is_empty() {
        TensorData::Int32(c.int_contents)
    } else if !c.uint64_contents.is_empty() {
        TensorData::Uint64(c.uint64_contents)
    } else if !c.uint_contents.is_empty() {
        TensorData::Uint32(c.uint_contents)
    } else if !c.bool_contents.is_empty() {
        TensorData::Bool(c.bool_contents)
    } else {
        let texts = c.bytes_contents.iter().map(|b| String::from_utf8_lossy(b).into_owned());
        TensorData::Bytes(texts.collect())
    }
}

#[tonic::async_trait]
impl GrpcInferenceService for Grpc {
    async fn server_live(
        &self,
        _: Request<proto::ServerLiveRequest>,
    ) -> Result<Response<proto::ServerLiveResponse>, Status> {
        Ok(Response::new(proto::ServerLiveResponse { live: true }))
    }

    async fn server_ready(
        &self,
        _: Request<proto::ServerReadyRequest>,
    ) -> Result<Response<proto::ServerReadyResponse>, Status> {
        Ok(Response::new(proto::ServerReadyResponse { ready: self.state.readiness.get().is_ok() }))
    }

    async fn model_ready(
        &self,
        request: Request<proto::ModelReadyRequest>,
    ) -> Result<Response<proto::ModelReadyResponse>, Status> {
        let r = request.into_inner();
        let selector = (!r.version.is_empty()).then_some(r.version.as_str());
        Ok(Response::new(proto::ModelReadyResponse {
            ready: self.state.resolve(&r.name, selector).is_ok(),
        }))
    }

    async fn server_metadata(
        &self,
        _: Request<proto::ServerMetadataRequest>,
    ) -> Result<Response<proto::ServerMetadataResponse>, Status> {
        Ok(Response::new(proto::ServerMetadataResponse {
            name: "logitflow-serve".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            extensions: vec!["model_repository".into(), "binary_tensor_data".into()],
        }))
    }

    async fn model_metadata(
        &self,
        request: Request<proto::ModelMetadataRequest>,
    ) -> Result<Response<proto::ModelMetadataResponse>, Status> {
        let r = request.into_inner();
        let selector = (!r.version.is_empty()).then_some(r.version.as_str());
        let meta = super::metadata_of(&self.state, &r.name, selector).map_err(status)?;
        let tensor = |t: &logitflow_kit::wire::TensorMetadata| {
            proto::model_metadata_response::TensorMetadata {
                name: t.name.clone(),
                datatype: t.datatype.clone(),
                shape: t.shape.clone(),
            }
        };
        Ok(Response::new(proto::ModelMetadataResponse {
            name: meta.name,
            versions: meta.versions,
            platform: meta.platform,
            inputs: meta.inputs.iter().map(tensor).collect(),
            outputs: meta.outputs.iter().map(tensor).collect(),
            properties: Default::default(),
        }))
    }

    async fn model_infer(
        &self,
        request: Request<proto::ModelInferRequest>,
    ) -> Result<Response<proto::ModelInferResponse>, Status> {
        let started = std::time::Instant::now();
        let r = request.into_inner();
        let selector = (!r.model_version.is_empty()).then_some(r.model_version.as_str());
        let catalog = self.state.catalog.load();
        let (version, loaded) = served_in(&catalog, &r.model_name)
            .and_then(|s| s.resolve(&r.model_name, selector))
            .map_err(status)?;
        loaded
            .count(started, infer_with(&loaded.model, version, r))
            .map(Response::new)
            .map_err(status)
    }

    async fn model_statistics(
        &self,
        request: Request<proto::ModelStatisticsRequest>,
    ) -> Result<Response<proto::ModelStatisticsResponse>, Status> {
        let r = request.into_inner();
        let name = (!r.name.is_empty()).then_some(r.name.as_str());
        let selector = (!r.version.is_empty()).then_some(r.version.as_str());
        let all = super::statistics_of(&self.state, name, selector).map_err(status)?;
        let duration = |count: u64, ns: u64| Some(proto::StatisticDuration { count, ns });
        let model_stats = all
            .into_iter()
            .map(|(name, version, s)| proto::ModelStatistics {
                name,
                version: version.to_string(),
                last_inference: s.last_inference_ms,
                inference_count: s.rows,
                execution_count: s.success,
                inference_stats: Some(proto::InferStatistics {
                    success: duration(s.success, s.success_ns),
                    fail: duration(s.failure, s.failure_ns),
                    compute_infer: duration(s.success, s.success_ns),
                    ..Default::default()
                }),
            })
            .collect();
        Ok(Response::new(proto::ModelStatisticsResponse { model_stats }))
    }

    async fn repository_index(
        &self,
        request: Request<proto::RepositoryIndexRequest>,
    ) -> Result<Response<proto::RepositoryIndexResponse>, Status> {
        let models = super::repository_entries(&self.state, request.into_inner().ready)
            .into_iter()
            .map(|e| proto::repository_index_response::ModelIndex {
                name: e.name,
                version: e.version.to_string(),
                state: if e.unavailable.is_some() { "UNAVAILABLE" } else { "READY" }.into(),
                reason: e.unavailable.unwrap_or_default(),
            })
            .collect();
        Ok(Response::new(proto::RepositoryIndexResponse { models }))
    }

    async fn repository_model_load(
        &self,
        request: Request<proto::RepositoryModelLoadRequest>,
    ) -> Result<Response<proto::RepositoryModelLoadResponse>, Status> {
        self.state.load(&request.into_inner().model_name).await.map_err(status)?;
        Ok(Response::new(proto::RepositoryModelLoadResponse {}))
    }
}

/// The `classification` parameter of a requested output (Triton's classification extension):
/// how many of the most probable classes to name.
fn classification(output: &proto::model_infer_request::InferRequestedOutputTensor) -> Option<u64> {
    use proto::infer_parameter::ParameterChoice;
    match output.parameters.get("classification")?.parameter_choice.as_ref()? {
        ParameterChoice::Int64Param(k) => u64::try_from(*k).ok(),
        ParameterChoice::Uint64Param(k) => Some(*k),
        _ => None,
    }
}

/// One input tensor: its typed `contents`, or else the next of the request's raw contents,
/// little-endian as the binary extension's over HTTP.
fn input_of(
    t: proto::model_infer_request::InferInputTensor,
    raw: &mut impl ExactSizeIterator<Item = Vec<u8>>,
) -> Result<InferInput, ApiError> {
    let shape: Vec<usize> =
        t.shape.iter().map(|&n| usize::try_from(n).unwrap_or(usize::MAX)).collect();
    let datatype = Datatype::parse(&t.datatype).ok_or_else(|| {
        invalid(format!("input {:?}: {:?} is not a datatype of the protocol", t.name, t.datatype))
    })?;
    let data = match (t.contents, raw.len() > 0) {
        (Some(c), _) => contents_data(c),
        (None, true) => {
            let bytes = raw.next().unwrap_or_default();
            let count = element_count(&t.name, &shape)?;
            TensorData::from_le_bytes(datatype, &bytes, count)
                .map_err(|e| invalid(format!("input {:?}: {e}", t.name)))?
        }
        (None, false) => TensorData::default(),
    };
    Ok(InferInput { name: t.name, shape, datatype, data, parameters: None })
}

/// The answer to one gRPC infer request for `model` (at `version`), and the rows it answered.
fn infer_with(
    model: &Model,
    version: u32,
    r: proto::ModelInferRequest,
) -> Result<(proto::ModelInferResponse, usize), ApiError> {
    let mut raw = r.raw_input_contents.into_iter();
    let inputs = r
        .inputs
        .into_iter()
        .map(|t| input_of(t, &mut raw))
        .collect::<Result<Vec<_>, ApiError>>()?;
    let (x, rows) = decode_inputs(inputs, model)?;
    let wanted: Vec<Wanted> = r
        .outputs
        .iter()
        .map(|o| Wanted { name: o.name.clone(), classification: classification(o) })
        .collect();
    let answers = outputs::answer(model, &x, rows, &wanted)?;
    let mut raw_output_contents = Vec::with_capacity(answers.len());
    let outputs = answers
        .into_iter()
        .map(|answer| {
            let mut raw = Vec::with_capacity(answer.values.raw_len());
            answer.values.write_raw(&mut raw);
            raw_output_contents.push(raw);
            proto::model_infer_response::InferOutputTensor {
                name: answer.name.into(),
                datatype: answer.values.datatype().name().into(),
                shape: answer.shape.iter().map(|&n| n as i64).collect(),
                parameters: Default::default(),
                contents: None,
            }
        })
        .collect();
    let response = proto::ModelInferResponse {
        model_name: r.model_name,
        model_version: version.to_string(),
        id: r.id,
        parameters: Default::default(),
        outputs,
        raw_output_contents,
    };
    Ok((response, rows))
}

/// Serves gRPC on `listener` until `shutdown`, with the token checked when there is one.
pub async fn serve(
    state: Arc<AppState>,
    token: Option<String>,
    tls: Option<(std::path::PathBuf, std::path::PathBuf)>,
    listener: tokio::net::TcpListener,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let check = move |request: Request<()>| -> Result<Request<()>, Status> {
        let Some(token) = &token else { return Ok(request) };
        let given = request
            .metadata()
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "));
        // The same constant-time comparison as HTTP's.
        if given.is_some_and(|g| logitflow_kit::same_token(g.as_bytes(), token.as_bytes())) {
            Ok(request)
        } else {
            Err(Status::unauthenticated("missing or wrong bearer token"))
        }
    };
    let mut server = tonic::transport::Server::builder();
    // With --tls-cert/--tls-key, gRPC speaks TLS as HTTP does, with the same certificate.
    if let Some((cert, key)) = tls {
        logitflow_kit::use_aws_lc_crypto();
        let read = |path: &std::path::Path| {
            std::fs::read(path).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))
        };
        let identity = tonic::transport::Identity::from_pem(read(&cert)?, read(&key)?);
        server = server.tls_config(tonic::transport::ServerTlsConfig::new().identity(identity))?;
    }
    server
        .add_service(GrpcInferenceServiceServer::with_interceptor(Grpc { state }, check))
        .serve_with_incoming_shutdown(
            tokio_stream::wrappers::TcpListenerStream::new(listener),
            shutdown,
        )
        .await?;
    Ok(())
}
