//! Builds a [`Model`] from AWS CLI JSON.

use std::path::Path;

use sekisho_diag::Diagnostic;

use crate::model::Model;

/// Reads the AWS CLI JSON files in `dir` and builds the model.
pub fn import_dir(dir: &Path) -> Result<Model, Vec<Diagnostic>> {
    Err(vec![
        Diagnostic::error("not yet").in_file(dir.display().to_string())
    ])
}
