//! mtasts-lab
