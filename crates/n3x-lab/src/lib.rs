//! The n3x lab (under construction).
