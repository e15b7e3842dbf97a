//! herald's code from the contract; tonic's from the same file's descriptors (via protox:
//! no protoc needed for either).

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let out = std::path::PathBuf::from(std::env::var("OUT_DIR")?);
    herald_build::Builder::new()
        .out_dir(out.join("herald"))
        .compile(&["proto/echo.proto"], &["proto"])?;
    let fds = protox::Compiler::new(["proto", "../../proto"])?
        .include_imports(true)
        .open_file("echo.proto")?
        .file_descriptor_set();
    std::fs::create_dir_all(out.join("tonic"))?;
    // For tonic-echo's reflection service.
    std::fs::write(
        out.join("tonic/descriptors.bin"),
        prost::Message::encode_to_vec(&fds),
    )?;
    tonic_prost_build::configure()
        .out_dir(out.join("tonic"))
        .build_client(false)
        .compile_fds(fds)?;
    Ok(())
}
