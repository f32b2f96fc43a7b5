//! Times `load` and `save` of an archive into a fresh data root: `bench_load FILE [DIR]`.

use std::time::Instant;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let file = std::env::args()
        .nth(1)
        .ok_or("usage: bench_load FILE [DIR]")?;
    let base = std::env::args().nth(2).unwrap_or_else(|| "/tmp".into());
    let dir = std::path::Path::new(&base).join(format!("bench-load-{}", std::process::id()));
    let svc = images::ImageService::open(&dir)?;
    let t = Instant::now();
    let mut tags = Vec::new();
    svc.load(std::fs::File::open(&file)?, &mut |e| {
        if let images::LoadEvent::LoadedTag(t) = e {
            tags.push(t);
        }
    })?;
    println!("load {file}: {:?} {tags:?}", t.elapsed());
    let plan = svc.save_plan(&tags)?;
    let out = dir.join("saved.tar");
    let t = Instant::now();
    svc.save(&plan, std::io::BufWriter::new(std::fs::File::create(&out)?))?;
    println!("save: {:?}", t.elapsed());
    let svc2 = images::ImageService::open(&dir.join("again"))?;
    let t = Instant::now();
    svc2.load(std::fs::File::open(&out)?, &mut |_| {})?;
    println!("load saved: {:?}", t.elapsed());
    if std::env::var_os("KEEP").is_none() {
        std::fs::remove_dir_all(&dir)?;
    } else {
        println!("kept {}", dir.display());
    }
    Ok(())
}
