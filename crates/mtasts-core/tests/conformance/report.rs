//! placeholder: the TLS-RPT report cases are being written
