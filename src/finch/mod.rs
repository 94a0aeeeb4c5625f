//! Finch: wire types shared with the sandbox emulator (the production client follows).
pub mod wire;
