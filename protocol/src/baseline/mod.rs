//! The paper's other baselines, for the simulator: Scuttlebutt and op-based causal broadcast.
//! Both keep their logs across a crash (neither can recover without them).

pub mod opbased;
pub mod scuttlebutt;
