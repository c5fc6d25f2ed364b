//! The domain owner's checker (`mtasts check`, `mtasts init`).
