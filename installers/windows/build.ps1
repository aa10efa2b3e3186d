# Build dist\clearml-tray-<version>-setup.exe: the PyInstaller bundle wrapped by Inno Setup.
# Needs: python with `pip install -e ".[test]"`, and Inno Setup 6 (iscc) — installed here with
# Chocolatey when missing (GitHub's Windows runners have choco).
$ErrorActionPreference = "Stop"
Set-Location (Join-Path $PSScriptRoot "..\..")
$env:CLEARML_TRAY_VERSION = (python -c "import tray_app; print(tray_app.__version__)").Trim()
python -m PyInstaller --noconfirm --log-level WARN `
  --distpath build\pyinstaller\dist --workpath build\pyinstaller\work `
  installers\pyinstaller\clearml-tray.spec
& build\pyinstaller\dist\clearml-tray\clearml-tray.exe self-test
if ($LASTEXITCODE -ne 0) { throw "self-test of the bundle failed" }
$iscc = Get-Command iscc -ErrorAction SilentlyContinue
if (-not $iscc) {
  choco install innosetup --no-progress -y
  $iscc = "${env:ProgramFiles(x86)}\Inno Setup 6\ISCC.exe"
}
& $iscc installers\windows\clearml-tray.iss
if ($LASTEXITCODE -ne 0) { throw "Inno Setup failed" }
Get-ChildItem dist\*.exe
