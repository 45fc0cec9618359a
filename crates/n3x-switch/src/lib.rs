//! The n3x link emulator (under construction).
