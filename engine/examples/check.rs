fn main() {
    for p in std::env::args().skip(1) {
        let c = ktstr_engine::check_file(std::path::Path::new(&p), &Default::default());
        print!("{}", c.render());
        if let Some(plan) = &c.plan {
            println!("{}", serde_json::to_string_pretty(plan).unwrap());
        }
    }
}
