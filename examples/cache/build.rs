fn main() -> Result<(), herald_build::Error> {
    herald_build::compile_protos(&["proto/accounts.proto", "proto/cache.proto"], &["proto"])
}
