pub mod sim;
pub mod fixtures;
pub mod swarm;
