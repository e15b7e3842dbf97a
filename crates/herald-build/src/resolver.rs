//! Makes `import "herald/options.proto";` work with no include path: the file ships inside
//! herald-build.

use protox::file::{File, FileResolver};

/// The import name of herald's options.
pub(crate) const OPTIONS_NAME: &str = "herald/options.proto";

/// The options' source, the one in the repository's `proto/` folder.
pub(crate) const OPTIONS_SOURCE: &str = include_str!("../../../proto/herald/options.proto");

/// Resolves only `herald/options.proto`.
#[derive(Debug)]
pub(crate) struct HeraldOptions;

impl FileResolver for HeraldOptions {
    fn open_file(&self, name: &str) -> Result<File, protox::Error> {
        if name == OPTIONS_NAME {
            File::from_source(name, OPTIONS_SOURCE)
        } else {
            Err(protox::Error::file_not_found(name))
        }
    }
}
