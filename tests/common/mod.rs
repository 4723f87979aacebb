pub mod sim;
pub mod fixtures;
