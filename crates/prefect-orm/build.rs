//! `embed_migrations!` reads the migration folders at compile time but does not tell cargo about
//! them, so a changed or added migration would not rebuild the crate. Tell cargo here.

fn main() {
    println!("cargo:rerun-if-changed=../../migrations/sqlite");
    println!("cargo:rerun-if-changed=../../migrations/postgresql");
    println!("cargo:rerun-if-changed=golden");
}
