; Inno Setup script: installs the PyInstaller bundle (dist\clearml-tray) per user, with a Start
; menu entry and an optional "start on login" Run key (the app's own setting manages it later).
; Built by installers\windows\build.ps1.
#define AppVersion GetEnv("CLEARML_TRAY_VERSION")

[Setup]
AppId={{6C1A3E0B-5B7B-4C8E-9E0F-C1EA2D1A5E55}
AppName=ClearML Session Tray
AppVersion={#AppVersion}
AppPublisher=ClearML Session Tray developers
DefaultDirName={localappdata}\Programs\ClearML Session Tray
DefaultGroupName=ClearML Session Tray
PrivilegesRequired=lowest
OutputDir=..\..\dist
OutputBaseFilename=clearml-tray-{#AppVersion}-setup
Compression=lzma2
SolidCompression=yes
WizardStyle=modern
UninstallDisplayIcon={app}\clearml-tray.exe

[Files]
Source: "..\..\build\pyinstaller\dist\clearml-tray\*"; DestDir: "{app}"; Flags: recursesubdirs ignoreversion

[Icons]
Name: "{group}\ClearML Session Tray"; Filename: "{app}\clearml-tray.exe"
Name: "{group}\Uninstall ClearML Session Tray"; Filename: "{uninstallexe}"

[Tasks]
Name: "autostart"; Description: "Start ClearML Session Tray when I log in"; Flags: unchecked

[Registry]
Root: HKCU; Subkey: "Software\Microsoft\Windows\CurrentVersion\Run"; ValueType: string; \
  ValueName: "clearml-tray"; ValueData: """{app}\clearml-tray.exe"""; Tasks: autostart; \
  Flags: uninsdeletevalue

[Run]
Filename: "{app}\clearml-tray.exe"; Description: "Start ClearML Session Tray"; \
  Flags: nowait postinstall skipifsilent
