//! Generates the gRPC service of the Open Inference Protocol from KServe's
//! `proto/open_inference_grpc.proto`, with protox (a protobuf compiler in Rust), so no `protoc`
//! is needed on the machine.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let proto = "proto/open_inference_grpc.proto";
    println!("cargo:rerun-if-changed={proto}");
    let descriptors = protox::compile([proto], ["proto"])?;
    // A message that does not decode is the client's fault: INVALID_ARGUMENT (src/grpc/codec.rs).
    tonic_prost_build::configure()
        .build_client(true)
        .build_server(true)
        .codec_path("crate::grpc::codec::StrictCodec")
        .compile_fds(descriptors)?;
    Ok(())
}
